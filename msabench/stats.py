"""Statistics for leaderboards: which rows are not significantly different from a column's best, and t-intervals.

The test a leaderboard column uses (`ties_with_best`): the best row (see `msabench.leaderboard`) is compared
with every other row that has at least `MIN_SEEDS` seeds by Welch's two-sided t-test on the per-seed values
(`scipy.stats.ttest_ind(..., equal_var=False)`); the column's p-values are Holm-corrected (step-down, which
controls the family-wise error rate over the column's comparisons); a row whose adjusted p-value exceeds
`ALPHA` is not significantly different from the best. Rows with fewer seeds are not tested. Two samples that
are both constant and equal have no difference to test (scipy's p is NaN): their p-value is taken as 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
MIN_SEEDS = 3
TEST = "Welch's two-sided t-test on the per-seed values, Holm-corrected over each column's comparisons"


def welch(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) between two samples."""
    with warnings.catch_warnings():  # constant samples: scipy warns about precision loss and returns inf or NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(np.asarray(a, np.float64), np.asarray(b, np.float64), equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: sorted ascending, the i-th smallest (from 0) is multiplied by
    m - i, made non-decreasing along that order and capped at 1. Reject where the adjusted value is <= alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: (pvalues[i], i))
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def ties_with_best(
    samples: Mapping[str, Sequence[float]], best: str, *, alpha: float = ALPHA, min_seeds: int = MIN_SEEDS
) -> dict[str, float]:
    """{row: Holm-adjusted p-value} of every row tested against `best`; rows with fewer than `min_seeds` values
    (or a NaN) are left out, and nothing is tested when `best` itself has too few. Rows with a value > alpha
    are not significantly different from the best."""
    if not _testable(samples[best], min_seeds):
        return {}
    rows = sorted(row for row, values in samples.items() if row != best and _testable(values, min_seeds))
    adjusted = holm([welch(samples[best], samples[row]) for row in rows])
    return dict(zip(rows, adjusted, strict=True))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The t-interval of the mean: mean ± t(1 - (1 - confidence) / 2, n - 1) · s / sqrt(n), s with ddof=1.
    None for fewer than two values or a NaN."""
    array = np.asarray(values, np.float64)
    if len(array) < 2 or np.isnan(array).any():
        return None
    mean, sem = float(array.mean()), float(array.std(ddof=1)) / math.sqrt(len(array))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1)) * sem
    return mean - half, mean + half


def _testable(values: Sequence[float], min_seeds: int) -> bool:
    return len(values) >= min_seeds and not any(math.isnan(v) for v in values)
