"""The published metric definitions (MMSA's semantics), computed with numpy and scikit-learn.

`evaluate(family, predictions, labels)` returns the family's metrics in a fixed order:

- ``"mosi"`` (CMU-MOSI, CMU-MOSEI): Acc-2 and weighted F1 with zero counted as positive
  (``_has0``) and with zero-labelled samples dropped (``_non0``); Acc-3/5/7 after clipping
  to ±1/±2/±3 and rounding (half to even); MAE and Pearson Corr on the raw values.
- ``"sims"`` (CH-SIMS, CH-SIMS v2): clip both to [-1, 1], then bin with right-closed
  intervals (Acc-2 puts 0 in the negative class); F1 is the weighted F1 of the Acc-2
  classes; MAE and Corr on the clipped values.
- ``"classification"``: accuracy, weighted and macro F1 on class ids.
- ``"iemocap"`` (MulT's four binary emotion tasks): per emotion (Neutral, Happy, Sad, Angry) the
  accuracy and weighted F1 of present vs absent, as MulT's ``eval_iemocap``; ``Acc_mean`` and
  ``F1_mean`` average them over the emotions. Predictions and labels are [N, 4] of 0/1.

Accuracies and F1 are fractions in [0, 1]; the leaderboard shows them in percent. Values are
compared in float64: a float32 prediction lying exactly on a SIMS bin edge (float32(0.1) is
0.10000000149) can land in another bin than in MMSA, which compares in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMOTIONS = ("Neutral", "Happy", "Sad", "Angry")  # IEMOCAP as MulT's files order them


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    percent: bool  # shown ×100 on leaderboards, and reported that way by papers
    definition: str


METRICS = {
    m.name: m
    for m in [
        Metric("Acc-2_has0", True, True, "binary accuracy, y >= 0 vs p >= 0, all samples"),
        Metric("F1_has0", True, True, "weighted F1 of the Acc-2_has0 classes"),
        Metric("Acc-2_non0", True, True, "binary accuracy, y > 0 vs p > 0, samples with y != 0"),
        Metric("F1_non0", True, True, "weighted F1 of the Acc-2_non0 classes"),
        Metric("Acc-2", True, True, "SIMS: bins (-1.01, 0], (0, 1.01] after clipping to [-1, 1]"),
        Metric("Acc-3", True, True, "MOSI: clip to ±1, round; SIMS: bins at -0.1, 0.1"),
        Metric("Acc-5", True, True, "MOSI: clip to ±2, round; SIMS: bins at -0.7, -0.1, 0.1, 0.7"),
        Metric("Acc-7", True, True, "clip to ±3, round, compare exactly"),
        Metric("F1", True, True, "SIMS: weighted F1 of the Acc-2 classes"),
        Metric("MAE", False, False, "mean absolute error"),
        Metric("Corr", True, False, "Pearson correlation (NaN for a constant input)"),
        Metric("Acc", True, True, "classification accuracy"),
        Metric("F1_weighted", True, True, "support-weighted F1 over classes"),
        Metric("F1_macro", True, True, "unweighted mean F1 over classes"),
        Metric("Acc_mean", True, True, "IEMOCAP: mean over the four emotions of the binary accuracy"),
        Metric("F1_mean", True, True, "IEMOCAP: mean over the four emotions of the binary weighted F1"),
        *(
            Metric(f"{kind}_{emotion}", True, True, f"IEMOCAP: {emotion} present vs absent, {what}")
            for emotion in EMOTIONS
            for kind, what in (("Acc", "accuracy"), ("F1", "weighted F1"))
        ),
    ]
}

FAMILIES = {
    "mosi": ("Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-3", "Acc-5", "Acc-7", "MAE", "Corr"),
    "sims": ("Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"),
    "classification": ("Acc", "F1_weighted", "F1_macro"),
    "iemocap": ("Acc_mean", "F1_mean", *(f"{kind}_{emotion}" for emotion in EMOTIONS for kind in ("Acc", "F1"))),
}

# The metric a family's charts and robustness curves lead with (iemocap: the mean accuracy over its emotions).
HEADLINE = {"mosi": "Acc-2_non0", "sims": "Acc-2", "classification": "Acc", "iemocap": "Acc_mean"}

SIMS_BINS = {
    "Acc-2": (0.0,),
    "Acc-3": (-0.1, 0.1),
    "Acc-5": (-0.7, -0.1, 0.1, 0.7),
}


def evaluate(family: str, predictions, labels) -> dict[str, float]:
    """The metrics of `family` for predictions against labels, keys in `FAMILIES[family]` order."""
    if family not in FAMILIES:
        raise ValueError(f"unknown metric family {family!r}; expected one of {', '.join(FAMILIES)}")
    if family == "iemocap":
        return _iemocap(np.asarray(predictions), np.asarray(labels))
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{len(p)} predictions for {len(y)} labels")
    if len(y) == 0:
        raise ValueError("cannot evaluate an empty split")
    if family == "classification":
        return {
            "Acc": _accuracy(y, p),
            "F1_weighted": _f1(y, p, "weighted"),
            "F1_macro": _f1(y, p, "macro"),
        }
    if family == "sims":
        p, y = np.clip(p, -1, 1), np.clip(y, -1, 1)
        bins = {key: (_bin(y, edges), _bin(p, edges)) for key, edges in SIMS_BINS.items()}
        return {
            "Acc-2": _accuracy(*bins["Acc-2"]),
            "Acc-3": _accuracy(*bins["Acc-3"]),
            "Acc-5": _accuracy(*bins["Acc-5"]),
            "F1": _f1(*bins["Acc-2"], "weighted"),
            "MAE": float(np.mean(np.abs(p - y))),
            "Corr": _pearson(p, y),
        }
    nonzero = y != 0
    return {
        "Acc-2_has0": _accuracy(y >= 0, p >= 0),
        "F1_has0": _f1(y >= 0, p >= 0, "weighted"),
        "Acc-2_non0": _accuracy(y[nonzero] > 0, p[nonzero] > 0),
        "F1_non0": _f1(y[nonzero] > 0, p[nonzero] > 0, "weighted"),
        "Acc-3": _accuracy(np.round(np.clip(y, -1, 1)), np.round(np.clip(p, -1, 1))),
        "Acc-5": _accuracy(np.round(np.clip(y, -2, 2)), np.round(np.clip(p, -2, 2))),
        "Acc-7": _accuracy(np.round(np.clip(y, -3, 3)), np.round(np.clip(p, -3, 3))),
        "MAE": float(np.mean(np.abs(p - y))),
        "Corr": _pearson(p, y),
    }


def polarity(family: str, labels) -> np.ndarray:
    """Negative (0), neutral (1) or positive (2) for sentiment intensities: the family's Acc-3 classes, as `evaluate`
    scores them. MOSI/MOSEI: round(clip(y, -1, 1)) + 1 (numpy rounding, halves to even, so |y| <= 0.5 is neutral);
    CH-SIMS: y clipped to [-1, 1], bins (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if family == "mosi":
        return (np.round(np.clip(y, -1, 1)) + 1).astype(np.int64)
    if family == "sims":
        return _bin(np.clip(y, -1, 1), SIMS_BINS["Acc-3"]).astype(np.int64)
    raise ValueError(f"metric family {family!r} has no polarity classes; only the regression families mosi and sims do")


def _iemocap(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if p.shape != y.shape or p.ndim != 2 or p.shape[1] != len(EMOTIONS):
        raise ValueError(
            f"iemocap metrics need [N, {len(EMOTIONS)}] predictions and labels; got {p.shape} and {y.shape}"
        )
    if len(y) == 0:
        raise ValueError("cannot evaluate an empty split")
    per = {}
    for i, emotion in enumerate(EMOTIONS):
        per[f"Acc_{emotion}"] = _accuracy(y[:, i], p[:, i])
        per[f"F1_{emotion}"] = _f1(y[:, i], p[:, i], "weighted")
    means = {
        "Acc_mean": float(np.mean([per[f"Acc_{e}"] for e in EMOTIONS])),
        "F1_mean": float(np.mean([per[f"F1_{e}"] for e in EMOTIONS])),
    }
    return {key: {**means, **per}[key] for key in FAMILIES["iemocap"]}


def _bin(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class index for right-closed bins: (-inf, e0] -> 0, (e0, e1] -> 1, ..."""
    return np.searchsorted(np.asarray(edges), values, side="left")


def _accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(truth == pred)) if len(truth) else float("nan")


def _f1(truth: np.ndarray, pred: np.ndarray, average: str) -> float:
    if not len(truth):
        return float("nan")
    from sklearn.metrics import f1_score  # imported here: scikit-learn (and pandas) slow a run's start-up

    return float(f1_score(truth, pred, average=average, zero_division=0))


def _pearson(p: np.ndarray, y: np.ndarray) -> float:
    if np.all(p == p[0]) or np.all(y == y[0]):  # constant input: undefined (rounding would give ~1e-16)
        return float("nan")
    p, y = p - p.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(p * p) * np.sum(y * y))
    return float(np.sum(p * y) / denominator) if denominator > 0 else float("nan")


# The columns of a row of MMSA's results/result-stat.md, in its order (MOSI and MOSEI share one layout).
MMSA_RESULT_COLUMNS = {
    "mosi": ("Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-5", "Acc-7", "MAE", "Corr"),
    "sims": ("Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"),
}


def mmsa_reported(layout: str, values) -> dict[str, float]:
    """A row of MMSA's results/result-stat.md as msabench's metrics: its columns in `MMSA_RESULT_COLUMNS[layout]`
    order, MAE and Corr there being x100."""
    names = MMSA_RESULT_COLUMNS[layout]
    return {name: v / 100 if name in ("MAE", "Corr") else v for name, v in zip(names, values, strict=True)}
