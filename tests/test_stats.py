"""Significance on leaderboards: Welch's t-test, Holm's correction, t-intervals, and the markers they give."""

import math
import os
import random
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from msabench.leaderboard import TIED, render, render_dataset
from msabench.stats import holm, t_interval, ties_with_best, welch
from test_leaderboard import result

GOLDEN = Path(__file__).parent / "golden" / "significance.md"


def test_welch_matches_the_textbook_formula():
    a, b = [0.80, 0.82, 0.81], [0.70, 0.75, 0.72, 0.71]
    # by hand: means 0.81 and 0.72; variances (ddof=1) 1e-4 and 0.0014/3; se^2 = 1e-4/3 + 0.0014/12 = 1.5e-4
    t = 0.09 / math.sqrt(1.5e-4)
    df = 1.5e-4**2 / ((1e-4 / 3) ** 2 / 2 + (0.0014 / 12) ** 2 / 3)  # Welch-Satterthwaite
    assert t == pytest.approx(7.34847, rel=1e-5) and df == pytest.approx(4.41818, rel=1e-5)
    assert welch(a, b) == pytest.approx(2 * scipy_stats.t.sf(t, df), rel=1e-9)
    assert welch(a, b) == pytest.approx(0.0012290, rel=1e-4)
    assert welch(b, a) == welch(a, b)  # two-sided


def test_welch_on_constant_samples():
    assert welch([1, 1, 1], [1, 1, 1]) == 1.0  # nothing to tell apart (scipy: NaN)
    assert welch([1, 1, 1], [2, 2, 2]) == 0.0


def test_holm_steps_down_in_order_of_the_p_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept non-decreasing: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_ties_with_best_leaves_out_rows_with_few_seeds():
    samples = {"best": [0.8, 0.81, 0.82], "close": [0.79, 0.81, 0.8], "two": [0.8, 0.8], "far": [0.5, 0.52, 0.51]}
    tested = ties_with_best(samples, "best")
    assert set(tested) == {"close", "far"}
    raw = [welch(samples["best"], samples["close"]), welch(samples["best"], samples["far"])]
    assert [tested["close"], tested["far"]] == pytest.approx(holm(raw))
    assert tested["close"] > 0.05 > tested["far"]
    assert ties_with_best({"best": [0.8, 0.9], "other": [0.1, 0.2, 0.3]}, "best") == {}  # the best has 2 seeds
    assert "nan" not in ties_with_best({"best": [0.8, 0.9, 0.7], "nan": [0.1, math.nan, 0.3]}, "best")


def test_t_interval():
    low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) = 4.3027; s = 1
    assert low == pytest.approx(2 - half, rel=1e-6) and high == pytest.approx(2 + half, rel=1e-6)
    assert t_interval([1.0]) is None and t_interval([1.0, math.nan]) is None


def seeds(method, values, family="sims", **kwargs):
    """One result per seed; `values` holds each seed's Acc-2 (the other sims columns follow from it)."""
    return [
        result(method, 1111 + i, [v, v - 0.1, v - 0.2, v, 1 - v, v - 0.05], dataset="ch-sims", family=family, **kwargs)
        for i, v in enumerate(values)
    ]


REPORTED = [{"dataset": "ch-sims", "source": "Table 1", "metrics": {"Acc-2": 80.9, "MAE": 0.40}}]


def constructed():
    return [
        *seeds("best", [0.80, 0.81, 0.82, 0.80, 0.81], reported=REPORTED),  # mean 80.80; MAE mean 0.192
        *seeds("near-a", [0.79, 0.80, 0.80, 0.79, 0.80]),  # p ~0.03 against best: significant alone...
        *seeds("near-b", [0.785, 0.80, 0.80, 0.79, 0.80]),  # ...p ~0.030 alone; Holm over 4 tests keeps both tied
        *seeds("far", [0.70, 0.71, 0.70, 0.72, 0.71]),
        *seeds("three", [0.81, 0.79, 0.80]),  # fewer seeds than the most: never bold, but tested
        *seeds("two", [0.81, 0.80]),  # fewer than 3: not tested, no marker though close
    ]


def row_of(page, method):
    return next(line for line in page.splitlines() if line.startswith(f"| {method} "))


def test_markers_follow_holm_not_the_raw_p_values():
    best, a, b = ([r.metrics["Acc-2"] for r in constructed() if r.method == m] for m in ("best", "near-a", "near-b"))
    assert welch(best, a) < 0.05 and welch(best, b) < 0.05  # each alone would be significantly worse
    page = render_dataset("ch-sims", constructed())
    cell = lambda method: row_of(page, method).split("|")[2].strip()  # noqa: E731  the Acc-2 column
    assert cell("best") == "**80.80 ± 0.84**"
    assert cell("near-a") == f"79.60 ± 0.55 {TIED}" and cell("near-b") == f"79.50 ± 0.71 {TIED}"
    assert cell("three") == f"80.00 ± 1.00 {TIED}"
    assert cell("far") == "70.80 ± 0.84"
    assert cell("two") == "80.50 ± 0.71"
    assert "Not tested for significance (fewer than 3 seeds): two." in page
    assert "Welch's two-sided t-test" in page and "Holm-corrected" in page and "α = 0.05" in page
    assert "†" not in row_of(page, "near-a")  # ties have their own marker


def test_reported_number_inside_or_outside_the_t_interval():
    page = render_dataset("ch-sims", constructed())
    table = page.split("### Reported vs reproduced")[1]
    row = row_of(table, "best")
    # Acc-2: 80.80 ± 2.776 * 0.837 / sqrt(5) = [79.76, 81.84] holds 80.9; MAE: 0.192 ± 0.0104 does not hold 0.40
    assert "80.90 / 80.80 (-0.10) ✓" in row and "0.4000 / 0.1920 (-0.2080) ✗" in row
    single = render_dataset("ch-sims", seeds("best", [0.8], reported=REPORTED))
    assert "80.90 / 80.00 (-0.90) –" in single


def test_golden_and_deterministic():
    results = constructed()
    page = render_dataset("ch-sims", results)
    if os.environ.get("MSABENCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(page, encoding="utf-8")
    assert page == GOLDEN.read_text(encoding="utf-8")
    shuffled = results[:]
    random.Random(7).shuffle(shuffled)
    assert render(shuffled)["ch-sims"] == page
