"""DMMSA's loss pieces against numbers worked out by hand."""

import math

import pytest
import torch

from msabench import Batch, Task
from msabench_dmmsa.objectives import (
    DMMSA,
    UnimodalMSE,
    coarse_labels,
    gdwg_weights,
    multi_nt_xent,
    unimodal_targets,
)

SIMS = Task("regression", "sims", (-1.0, 1.0))
MOSI = Task("regression", "mosi", (-3.0, 3.0))

# One sample, 2-d features chosen so every cosine is -1, 0 or 1:
# anchor Ts = (1, 0); positives Vs = (2, 0) -> cos 1, As = (0, 3) -> cos 0;
# negatives Td = (-1, 0) -> cos -1, Vd = (0, 1) -> 0, Ad = (0, -2) -> 0.
ANCHOR = torch.tensor([[1.0, 0.0]])
POSITIVES = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
NEGATIVES = torch.tensor([[[-1.0, 0.0], [0.0, 1.0], [0.0, -2.0]]])


def test_multi_nt_xent_by_hand():
    # tau = 0.5: exp(1/.5) = e^2 and exp(0) = 1 for the positives; e^-2, 1, 1 for the negatives.
    expected = -math.log((math.e**2 + 1) / (math.e**2 + 1 + math.e**-2 + 1 + 1))
    assert multi_nt_xent(ANCHOR, POSITIVES, NEGATIVES, 0.5).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.2267675, abs=1e-6)


def test_contrastive_losses_average_over_the_batch_and_ignore_scale():
    anchor = torch.cat([ANCHOR, 5 * ANCHOR])  # the same sample at another scale: cosine does not change
    positives, negatives = POSITIVES.repeat(2, 1, 1), NEGATIVES.repeat(2, 1, 1)
    assert multi_nt_xent(anchor, positives, negatives, 0.5).item() == pytest.approx(
        multi_nt_xent(ANCHOR, POSITIVES, NEGATIVES, 0.5).item(), abs=1e-6
    )
    # tau = 1: -log((e + 1) / (e + 1 + 1/e + 2))
    assert multi_nt_xent(ANCHOR, POSITIVES, NEGATIVES, 1.0).item() == pytest.approx(
        -math.log((math.e + 1) / (math.e + 3 + 1 / math.e)), abs=1e-6
    )


def test_gdwg_weights_by_hand():
    # Epoch 1 is the reference: ratios 1, 1 -> equal weights.
    assert gdwg_weights({"uni": 2.0, "cl": 4.0}, {"uni": 2.0, "cl": 4.0}, 2.0) == pytest.approx({"uni": 0.5, "cl": 0.5})
    # Later: w_uni = 1/2 = 0.5, w_cl = 3/4 = 0.75; softmax of (0.25, 0.375).
    weights = gdwg_weights({"uni": 1.0, "cl": 3.0}, {"uni": 2.0, "cl": 4.0}, 2.0)
    assert weights["uni"] == pytest.approx(1 / (1 + math.exp(0.125)), abs=1e-9) == pytest.approx(0.468791, abs=1e-6)
    assert weights["cl"] == pytest.approx(0.531209, abs=1e-6)
    assert gdwg_weights({"uni": 1.0}, {"uni": 3.0}, 2.0) == {"uni": 1.0}


def test_gdwg_state_lives_in_the_objective_and_moves_per_epoch():
    objective = DMMSA(SIMS)
    objective.on_fit_start(None)
    first = {"epoch": 1, "train": {"total": 9.0, "msr": 1.0, "msc": 1.0, "uni": 2.0, "cl": 4.0}}
    objective.on_epoch_end(None, 1, first)
    assert first["lambda"] == {"uni": 0.5, "cl": 0.5}  # epoch 1 trains with equal weights
    assert objective.lambdas == pytest.approx({"uni": 0.5, "cl": 0.5})  # ratios 1, 1
    second = {"epoch": 2, "train": {"uni": 1.0, "cl": 3.0}}
    objective.on_epoch_end(None, 2, second)
    assert second["lambda"] == pytest.approx({"uni": 0.5, "cl": 0.5})
    assert objective.lambdas == pytest.approx({"uni": 0.468791, "cl": 0.531209}, abs=1e-6)
    third = {"epoch": 3, "train": {"uni": 2.0, "cl": 2.0}}  # references stay epoch 1's: ratios 1 and 0.5
    objective.on_epoch_end(None, 3, third)
    assert third["lambda"] == pytest.approx({"uni": 0.468791, "cl": 0.531209}, abs=1e-6)
    assert objective.lambdas["uni"] == pytest.approx(1 / (1 + math.exp(-0.25)), abs=1e-9)
    objective.on_fit_start(None)  # a new run starts over
    assert objective.lambdas == {"uni": 0.5, "cl": 0.5} and objective.reference is None


def test_without_gdwg_the_weights_stay_equal():
    objective = DMMSA(SIMS, gdwg=False)
    for epoch, (uni, cl) in enumerate([(2.0, 4.0), (1.0, 3.0)], start=1):
        logs = {"train": {"uni": uni, "cl": cl}}
        objective.on_epoch_end(None, epoch, logs)
        assert logs["lambda"] == {"uni": 0.5, "cl": 0.5}
    without_cl = DMMSA(SIMS, cl=False)  # removing CL does not reweight Uni: it keeps the full model's start, 1/2
    assert without_cl.lambdas == {"uni": 0.5}
    for epoch, uni in enumerate([2.0, 1.0, 0.5], start=1):
        logs = {"train": {"uni": uni}}
        without_cl.on_epoch_end(None, epoch, logs)
        assert logs["lambda"] == {"uni": 0.5}
    assert without_cl.lambdas == {"uni": 0.5}


def test_coarse_labels_sims_follow_the_acc3_bins():
    y = torch.tensor([-1.0, -0.4, -0.1, -0.08, 0.0, 0.1, 0.12, 0.2, 1.0])
    assert coarse_labels(y, "sims").tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_coarse_labels_mosi_follow_the_acc3_bins():
    y = torch.tensor([-3.0, -0.6, -0.5, -0.2, 0.0, 0.4, 0.5, 0.51, 2.2])
    assert coarse_labels(y, "mosi").tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="classification"):
        coarse_labels(y, "classification")


def test_unimodal_targets_use_unimodal_labels_where_present():
    like = torch.zeros(2, 2, 3)
    with_labels = Batch(
        label=torch.tensor([0.2, -0.4]),
        label_T=torch.tensor([1.0, -1.0]),
        label_A=torch.tensor([0.0, 0.2]),
        label_V=torch.tensor([0.4, 0.6]),
    )
    targets = unimodal_targets(with_labels, like)
    assert torch.allclose(targets[0], torch.tensor([[0.2, 0.2, 0.2], [1.0, 0.0, 0.4]]))
    assert torch.allclose(targets[1], torch.tensor([[-0.4, -0.4, -0.4], [-1.0, 0.2, 0.6]]))
    assert torch.allclose(unimodal_targets(Batch(label=torch.tensor([0.2, -0.4])), like)[1], torch.full((2, 3), -0.4))


def outputs(prediction, logits):
    similar = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [2.0, 0.0]]])  # Ts, As, Vs: the vectors above
    dissimilar = torch.tensor([[[-1.0, 0.0], [0.0, -2.0], [0.0, 1.0]]])  # Td, Ad, Vd
    return {
        "prediction": torch.tensor([[prediction]]),
        "logits": torch.tensor([logits]),
        "unimodal": torch.tensor([[[0.2, 0.2, 0.2], [0.0, 0.0, 0.0]]]),
        "similar": similar,
        "dissimilar": dissimilar,
    }


def test_dmmsa_total_by_hand():
    batch = Batch(
        label=torch.tensor([0.4]),
        label_T=torch.tensor([0.0]),
        label_A=torch.tensor([0.0]),
        label_V=torch.tensor([1.0]),
        index=torch.tensor([0]),
    )
    losses = DMMSA(SIMS)(outputs(0.0, [0.0, 0.0, math.log(2.0)]), batch)
    msr = 0.5 * 0.4**2  # smooth-L1, |error| < 1
    msc = -math.log(2 / 4)  # class positive (0.4 > 0.1): softmax(0, 0, log 2) = 2/4
    uni = (3 * 0.5 * 0.2**2 + 0 + 0 + 0.5 * 1.0**2) / 6  # similar vs 0.4, dissimilar vs (0, 0, 1)
    cl = -math.log((math.e**2 + 1) / (math.e**2 + 3 + math.e**-2))
    assert losses["msr"].item() == pytest.approx(msr, abs=1e-6)
    assert losses["msc"].item() == pytest.approx(msc, abs=1e-6)
    assert losses["uni"].item() == pytest.approx(uni, abs=1e-6)
    assert losses["cl"].item() == pytest.approx(cl, abs=1e-6)
    assert losses["total"].item() == pytest.approx(msr + msc + 0.5 * uni + 0.5 * cl, abs=1e-6)
    ablated = DMMSA(SIMS, msc=False, cl=False)(outputs(0.0, [0.0, 0.0, 0.0]), batch)
    assert set(ablated) == {"total", "msr", "uni"}
    assert ablated["total"].item() == pytest.approx(msr + 0.5 * uni, abs=1e-6)


def test_the_stages_loss_is_mse_on_the_modality_label_or_the_multimodal_one():
    prediction = {"prediction": torch.tensor([[0.5], [0.0]])}
    sims = Batch(label=torch.tensor([1.0, 1.0]), label_A=torch.tensor([0.0, 0.0]), index=torch.arange(2))
    assert UnimodalMSE(SIMS, label="A")(prediction, sims)["total"].item() == pytest.approx(0.25 / 2)
    mosi = Batch(label=torch.tensor([1.0, 1.0]), index=torch.arange(2))  # no unimodal labels: y
    assert UnimodalMSE(MOSI, label="A")(prediction, mosi)["total"].item() == pytest.approx((0.25 + 1.0) / 2)
    with pytest.raises(ValueError, match="label must be T, A or V"):
        UnimodalMSE(MOSI, label="X")
