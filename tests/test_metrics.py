"""The published metric definitions (DESIGN.md section 4), checked against hand-computed values,
against scikit-learn/scipy directly, and against MMSA's own binning loop."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

from msabench.metrics import FAMILIES, METRICS, evaluate

MOSI_KEYS = ("Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-3", "Acc-5", "Acc-7", "MAE", "Corr")
SIMS_KEYS = ("Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr")
CLASSIFICATION_KEYS = ("Acc", "F1_weighted", "F1_macro")

# DESIGN.md's check vector.
Y = [-2, -0.4, 0, 0, 0.6, 2.2]
P = [-1, 0.2, 0, -0.1, 0.5, 3.4]


def quiet_evaluate(family, predictions, labels):
    """evaluate() with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return evaluate(family, predictions, labels)


# --- keys, order, directions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "keys", "p", "y"),
    [
        ("mosi", MOSI_KEYS, P, Y),
        ("sims", SIMS_KEYS, [-0.5, 0.2, 0.9], [-0.4, 0.4, 1.0]),
        ("classification", CLASSIFICATION_KEYS, [0, 1, 2], [0, 1, 1]),
    ],
)
def test_keys_and_order_per_family(family, keys, p, y):
    result = evaluate(family, p, y)
    assert tuple(result) == keys
    assert FAMILIES[family] == keys
    assert all(type(value) is float for value in result.values())


def test_every_metric_declares_a_direction():
    used = {key for keys in FAMILIES.values() for key in keys}
    assert used == set(METRICS)
    for name, metric in METRICS.items():
        assert metric.name == name
        assert isinstance(metric.higher_is_better, bool)
        assert metric.definition
    assert METRICS["MAE"].higher_is_better is False
    assert [name for name, metric in METRICS.items() if not metric.higher_is_better] == ["MAE"]
    assert METRICS["Corr"].percent is False and METRICS["MAE"].percent is False
    assert all(METRICS[name].percent for name in used - {"MAE", "Corr"})


# --- MOSI family -----------------------------------------------------------------------------------


def test_design_check_vector():
    result = quiet_evaluate("mosi", P, Y)
    published = {
        "Acc-2_has0": 0.6667,
        "F1_has0": 0.6667,
        "Acc-2_non0": 0.75,
        "F1_non0": 0.7333,
        "Acc-5": 0.6667,
        "Acc-7": 0.5,
        "MAE": 0.5,
        "Corr": 0.9226,
    }
    for key, value in published.items():
        assert round(result[key], 4) == value, key


def test_check_vector_exact_hand_values():
    # clip ±1 and round: y -> [-1, -0, 0, 0, 1, 1], p -> [-1, 0, 0, -0, 0 (0.5 half to even), 1]
    # has0: y>=0 [F,F,T,T,T,T], p>=0 [F,T,T,F,T,T]; F1: class T (support 4) P=R=3/4, class F (2) P=R=1/2
    # non0 (drop the two zeros): y>0 [F,F,T,T], p>0 [F,T,T,T]; F1: T: 2TP 1FP -> 0.8, F: P=1 R=1/2 -> 2/3
    result = evaluate("mosi", P, Y)
    assert result["Acc-2_has0"] == pytest.approx(4 / 6)
    assert result["F1_has0"] == pytest.approx((4 * 0.75 + 2 * 0.5) / 6)
    assert result["Acc-2_non0"] == pytest.approx(3 / 4)
    assert result["F1_non0"] == pytest.approx((2 * 0.8 + 2 * (2 / 3)) / 4)
    assert result["Acc-3"] == pytest.approx(5 / 6)
    assert result["Acc-5"] == pytest.approx(4 / 6)
    assert result["Acc-7"] == pytest.approx(3 / 6)
    assert result["MAE"] == pytest.approx((1 + 0.6 + 0 + 0.1 + 0.1 + 1.2) / 6)
    assert result["Corr"] == pytest.approx(np.corrcoef(P, Y)[0, 1], abs=1e-12)
    assert result["Corr"] == pytest.approx(0.9226055255, abs=1e-9)


def test_mosi_matches_sklearn_and_scipy_on_random_data():
    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 500) * 5) / 5  # multiples of 0.2, like MOSI's labels
    y[:40] = 0
    p = rng.normal(0, 1.8, 500)
    p[:10] = 0
    result = evaluate("mosi", p, y)
    non0 = y != 0
    expected = {
        "Acc-2_has0": accuracy_score(y >= 0, p >= 0),
        "F1_has0": f1_score(y >= 0, p >= 0, average="weighted"),
        "Acc-2_non0": accuracy_score(y[non0] > 0, p[non0] > 0),
        "F1_non0": f1_score(y[non0] > 0, p[non0] > 0, average="weighted"),
        "Acc-3": accuracy_score(np.round(np.clip(y, -1, 1)), np.round(np.clip(p, -1, 1))),
        "Acc-5": accuracy_score(np.round(np.clip(y, -2, 2)), np.round(np.clip(p, -2, 2))),
        "Acc-7": accuracy_score(np.round(np.clip(y, -3, 3)), np.round(np.clip(p, -3, 3))),
        "MAE": np.mean(np.abs(p - y)),
        "Corr": pearsonr(p, y)[0],
    }
    assert result == pytest.approx(expected, abs=1e-12)


def test_labels_exactly_zero_positive_for_has0_and_dropped_for_non0():
    # has0: all three labels count as positive; the prediction -0.5 is the only miss.
    # non0: only the third sample remains, and it is right.
    result = evaluate("mosi", [0.5, -0.5, 1.0], [0.0, 0.0, 1.0])
    assert result["Acc-2_has0"] == pytest.approx(2 / 3)
    assert result["Acc-2_non0"] == 1.0
    assert result["F1_non0"] == 1.0


def test_non0_metrics_are_computed_on_the_nonzero_samples_only():
    # The zero-labelled samples have wildly wrong predictions; non0 must not see them.
    y = [0.0, 0.0, 0.0, 1.2, -1.4, 2.0, -0.6]
    p = [-3.0, -3.0, 3.0, 0.4, -0.2, -1.0, -0.8]
    result = evaluate("mosi", p, y)
    assert result["Acc-2_non0"] == pytest.approx(3 / 4)
    truth, pred = [True, False, True, False], [True, False, False, False]
    assert result["F1_non0"] == pytest.approx(f1_score(truth, pred, average="weighted"))
    # hand: class True (2): P=1 R=1/2 F1=2/3; class False (2): P=2/3 R=1 F1=0.8
    assert result["F1_non0"] == pytest.approx((2 * (2 / 3) + 2 * 0.8) / 4)


@pytest.mark.parametrize(
    ("y", "has0", "non0"),
    [([1.0, 2.0], 1.0, 0.0), ([-1.0, -2.0], 0.0, 1.0)],
)
def test_predictions_exactly_zero(y, has0, non0):
    """A prediction of exactly 0 is positive for has0 (p >= 0) and negative for non0 (p > 0)."""
    result = evaluate("mosi", [0.0, 0.0], y)
    assert result["Acc-2_has0"] == has0
    assert result["Acc-2_non0"] == non0


def test_all_labels_zero_gives_nan_non0_without_raising():
    result = quiet_evaluate("mosi", [0.3, -0.2, 0.0], [0.0, 0.0, 0.0])
    assert math.isnan(result["Acc-2_non0"]) and math.isnan(result["F1_non0"])
    assert result["Acc-2_has0"] == pytest.approx(2 / 3)
    assert math.isnan(result["Corr"])  # constant labels


@pytest.mark.parametrize(
    ("key", "p", "y", "hit"),
    [
        # Acc-7: clip to ±3, round half to even
        ("Acc-7", 0.5, 0.0, True),
        ("Acc-7", 0.5, 1.0, False),
        ("Acc-7", 1.5, 2.0, True),
        ("Acc-7", 1.5, 1.0, False),
        ("Acc-7", 2.5, 2.0, True),
        ("Acc-7", 2.5, 3.0, False),
        ("Acc-7", -2.5, -2.0, True),
        ("Acc-7", -2.5, -3.0, False),
        ("Acc-7", -0.5, 0.0, True),
        ("Acc-7", -0.5, -1.0, False),
        ("Acc-7", 0.51, 1.0, True),
        # Acc-5: clip to ±2
        ("Acc-5", 1.5, 2.0, True),
        ("Acc-5", 0.5, 0.0, True),
        ("Acc-5", 0.5, 1.0, False),
        ("Acc-5", -1.5, -2.0, True),
        ("Acc-5", 2.5, 2.0, True),  # clipped to 2 before rounding
        ("Acc-5", 3.4, 2.2, True),  # both clip to 2
        ("Acc-5", -2.6, -3.0, True),
        # Acc-3: clip to ±1
        ("Acc-3", 0.5, 0.0, True),
        ("Acc-3", 0.5, 1.0, False),
        ("Acc-3", -0.5, 0.0, True),
        ("Acc-3", -0.5, -1.0, False),
        ("Acc-3", 2.9, 1.0, True),
        ("Acc-3", -1.5, -3.0, True),
    ],
)
def test_rounding_halves_to_even_and_clipping(key, p, y, hit):
    assert evaluate("mosi", [p], [y])[key] == (1.0 if hit else 0.0)


def test_acc7_clips_predictions_to_three():
    result = evaluate("mosi", [3.4, -3.6, 1.0], [3.0, -3.0, 1.0])
    assert result["Acc-7"] == 1.0
    assert result["Acc-5"] == 1.0
    assert result["Acc-3"] == 1.0


def test_mosi_mae_and_corr_use_the_raw_values():
    y = [-3.0, -1.0, 1.0, 3.0]
    p = [-6.0, -1.0, 1.0, 9.0]
    result = evaluate("mosi", p, y)
    assert result["MAE"] == pytest.approx((3 + 0 + 0 + 6) / 4)
    raw = np.corrcoef(p, y)[0, 1]
    clipped = np.corrcoef(np.clip(p, -3, 3), y)[0, 1]
    assert abs(raw - clipped) > 0.01  # the vector tells the two apart
    assert result["Corr"] == pytest.approx(raw, abs=1e-12)
    assert result["Acc-7"] == 1.0  # but the accuracies do clip


# --- SIMS family -----------------------------------------------------------------------------------

SIMS_Y = [-1.5, -0.7, -0.1, 0.0, 0.1, 0.7, 1.2, -0.3]
SIMS_P = [-0.8, -0.69, -0.11, 0.0, 0.1, 0.71, 2.0, 0.05]


def test_sims_hand_values():
    # clipped: y [-1, -0.7, -0.1, 0, 0.1, 0.7, 1, -0.3]; p [-0.8, -0.69, -0.11, 0, 0.1, 0.71, 1, 0.05]
    # Acc-2 (0 negative):  y [0,0,0,0,1,1,1,0]  p [0,0,0,0,1,1,1,1]  -> 7/8
    # Acc-3:               y [0,0,0,1,1,2,2,0]  p [0,0,0,1,1,2,2,1]  -> 7/8
    # Acc-5:               y [0,0,1,2,2,3,4,1]  p [0,1,1,2,2,4,4,2]  -> 5/8
    # F1: class 0 (5): P=1 R=4/5 -> 8/9; class 1 (3): P=3/4 R=1 -> 6/7
    result = quiet_evaluate("sims", SIMS_P, SIMS_Y)
    assert result["Acc-2"] == pytest.approx(7 / 8)
    assert result["Acc-3"] == pytest.approx(7 / 8)
    assert result["Acc-5"] == pytest.approx(5 / 8)
    assert result["F1"] == pytest.approx((5 * 8 / 9 + 3 * 6 / 7) / 8)
    assert result["MAE"] == pytest.approx((0.2 + 0.01 + 0.01 + 0 + 0 + 0.01 + 0 + 0.35) / 8)
    clipped_p, clipped_y = np.clip(SIMS_P, -1, 1), np.clip(SIMS_Y, -1, 1)
    assert result["Corr"] == pytest.approx(np.corrcoef(clipped_p, clipped_y)[0, 1], abs=1e-12)
    assert result["Corr"] != pytest.approx(np.corrcoef(SIMS_P, SIMS_Y)[0, 1], abs=1e-3)


@pytest.mark.parametrize(
    ("value", "acc2", "acc3", "acc5"),
    [
        (-1.0, 0, 0, 0),
        (-0.7, 0, 0, 0),  # right-closed: -0.7 is in (-1.01, -0.7]
        (-0.6999, 0, 0, 1),
        (-0.1, 0, 0, 1),  # -0.1 is in (-0.7, -0.1] and (-1.01, -0.1]
        (-0.0999, 0, 1, 2),
        (0.0, 0, 1, 2),  # 0 is negative for Acc-2
        (1e-9, 1, 1, 2),
        (0.1, 1, 1, 2),  # 0.1 is in (-0.1, 0.1]
        (0.1001, 1, 2, 3),
        (0.7, 1, 2, 3),  # 0.7 is in (0.1, 0.7]
        (0.7001, 1, 2, 4),
        (1.0, 1, 2, 4),
        (5.0, 1, 2, 4),  # clipped to 1
        (-5.0, 0, 0, 0),  # clipped to -1
    ],
)
def test_sims_bin_edges(value, acc2, acc3, acc5):
    """Each value lands in the bin given by the table: it matches a label in that bin and misses
    labels in the neighbouring bins."""
    centres = {"Acc-2": [-0.5, 0.5], "Acc-3": [-0.5, 0.0, 0.5], "Acc-5": [-0.9, -0.4, 0.0, 0.4, 0.9]}
    for key, expected in (("Acc-2", acc2), ("Acc-3", acc3), ("Acc-5", acc5)):
        for index, centre in enumerate(centres[key]):
            hit = evaluate("sims", [value], [centre])[key]
            assert hit == (1.0 if index == expected else 0.0), (key, value, centre)


def mmsa_sims_classes(values, edges):
    """MMSA's own loop (eval_sims_regression): class i where edges[i] < x <= edges[i + 1]."""
    values = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    classes = values.copy()
    for i in range(len(edges) - 1):
        classes[np.logical_and(values > edges[i], values <= edges[i + 1])] = i
    return classes


def test_sims_matches_mmsa_loop_and_sklearn_on_random_data():
    rng = np.random.default_rng(1)
    y = np.round(rng.uniform(-1, 1, 400) * 5) / 5
    p = rng.normal(0, 0.8, 400)
    p[:12] = [-0.7, -0.1, 0.0, 0.1, 0.7, 1.0, -1.0, 1.5, -1.5, 0.7, -0.7, 0.0]
    result = evaluate("sims", p, y)
    m2, m3, m5 = [-1.01, 0.0, 1.01], [-1.01, -0.1, 0.1, 1.01], [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    pc, yc = np.clip(p, -1, 1), np.clip(y, -1, 1)
    expected = {
        "Acc-2": accuracy_score(mmsa_sims_classes(y, m2), mmsa_sims_classes(p, m2)),
        "Acc-3": accuracy_score(mmsa_sims_classes(y, m3), mmsa_sims_classes(p, m3)),
        "Acc-5": accuracy_score(mmsa_sims_classes(y, m5), mmsa_sims_classes(p, m5)),
        "F1": f1_score(mmsa_sims_classes(y, m2), mmsa_sims_classes(p, m2), average="weighted"),
        "MAE": np.mean(np.abs(pc - yc)),
        "Corr": pearsonr(pc, yc)[0],
    }
    assert result == pytest.approx(expected, abs=1e-12)


def test_sims_mae_uses_clipped_values():
    result = evaluate("sims", [3.0, -2.0], [1.0, -1.0])
    assert result["MAE"] == 0.0
    assert result["Acc-5"] == 1.0


# --- classification -----------------------------------------------------------------------------


def test_classification_hand_values():
    y = [0, 0, 1, 1, 2, 2, 2]
    p = [0, 1, 1, 1, 2, 0, 2]
    # per class F1: 0 -> P=R=1/2 -> 0.5; 1 -> P=2/3 R=1 -> 0.8; 2 -> P=1 R=2/3 -> 0.8
    result = quiet_evaluate("classification", p, y)
    assert result["Acc"] == pytest.approx(5 / 7)
    assert result["F1_macro"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert result["F1_weighted"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 3 * 0.8) / 7)
    assert result["F1_weighted"] == pytest.approx(f1_score(y, p, average="weighted"))
    assert result["F1_macro"] == pytest.approx(f1_score(y, p, average="macro"))


def test_classification_missing_predicted_class_does_not_warn():
    result = quiet_evaluate("classification", [0, 0, 0, 0], [0, 1, 2, 0])
    assert result["Acc"] == 0.5
    # class 0: P=1/2 R=1 -> 2/3; classes 1 and 2 never predicted -> 0
    assert result["F1_macro"] == pytest.approx((2 / 3) / 3)
    assert result["F1_weighted"] == pytest.approx(2 * (2 / 3) / 4)


# --- input forms, degenerate inputs, errors ------------------------------------------------------


def test_accepts_tensors_lists_and_column_vectors():
    expected = evaluate("mosi", P, Y)
    as_tensors = evaluate(
        "mosi", torch.tensor(P, dtype=torch.float64).reshape(-1, 1), torch.tensor(Y, dtype=torch.float64)
    )
    as_arrays = evaluate("mosi", np.array(P)[:, None], np.array(Y))
    assert as_tensors == expected
    assert as_arrays == expected


@pytest.mark.parametrize("constant", [0.0, 1.0, -2.0, 0.5])
@pytest.mark.parametrize("family", ["mosi", "sims"])
def test_constant_predictions_give_nan_corr_without_warnings(family, constant):
    result = quiet_evaluate(family, [constant] * 6, Y)
    assert math.isnan(result["Corr"])
    assert not math.isnan(result["MAE"])
    for key, value in result.items():
        if key != "Corr":
            assert value >= 0, key


def test_constant_labels_give_nan_corr():
    assert math.isnan(quiet_evaluate("mosi", P, [1.0] * 6)["Corr"])


@pytest.mark.parametrize("constant", [0.1, 0.7, 2.2])
def test_constant_prediction_with_inexact_mean_gives_nan_corr(constant):
    predictions = np.full(6, constant)
    assert np.ptp(predictions) == 0
    assert math.isnan(quiet_evaluate("mosi", predictions, Y)["Corr"])


@pytest.mark.parametrize("family", ["mosi", "sims", "classification"])
def test_mismatched_lengths_raise(family):
    with pytest.raises(ValueError, match=r"^3 predictions for 2 labels$"):
        evaluate(family, [0.0, 1.0, 1.0], [0.0, 1.0])


@pytest.mark.parametrize("family", ["mosi", "sims", "classification"])
def test_empty_input_raises(family):
    with pytest.raises(ValueError, match="cannot evaluate an empty split"):
        evaluate(family, [], [])


def test_unknown_family_raises_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown metric family 'mosei'; expected one of mosi, sims, classification"):
        evaluate("mosei", [0.0], [0.0])
