"""DMMSA's multi-task objective with global dynamic weight generation (GDWG), and the unimodal pre-training loss of
the stages (ConFEDE's objective is in `confede`).

DMMSA reads the outputs of `feature-decomposition`: ``prediction``, ``logits``, ``unimodal`` [B, 2, 3],
``similar``/``dissimilar`` [B, 3, D] in the order text, audio, vision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch.nn import functional as F

from msabench import Objective

# Coarse polarity classes (negative 0 / neutral 1 / positive 2) per metric family: the family's
# own Acc-3 bins, so MSC's neutral class is exactly the one Acc-3 scores.
#   sims: y <= -0.1 | -0.1 < y <= 0.1 | y > 0.1   (bins (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01])
#   mosi: y < -0.5  | -0.5 <= y <= 0.5 | y > 0.5  (round(clip(y, -1, 1)) with halves to even)
NEUTRAL_BAND = {"sims": (-0.1, 0.1), "mosi": (-0.5, 0.5)}
ADJUSTED = ("uni", "cl")  # the tasks whose weights GDWG sets


def coarse_labels(y: torch.Tensor, family: str) -> torch.Tensor:
    """Negative (0), neutral (1) or positive (2) for sentiment intensities `y`, by the family's Acc-3 bins."""
    if family not in NEUTRAL_BAND:
        raise ValueError(f"no coarse polarity classes for metric family {family!r}; known: {', '.join(NEUTRAL_BAND)}")
    low, high = NEUTRAL_BAND[family]
    negative = y <= low if family == "sims" else y < low
    positive = y > high
    return torch.where(negative, 0, torch.where(positive, 2, 1)).long()


def cosine(anchor: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of `anchor` [B, D] with each of `others` [B, K, D] -> [B, K]."""
    return F.cosine_similarity(anchor.unsqueeze(1), others, dim=-1)


def multi_nt_xent(
    anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """DMMSA's Multi-NT-Xent, mean over the batch: -log( sum_P exp(s/t) / sum_{P and N} exp(s/t) ), s = cosine."""
    pos = cosine(anchor, positives) / temperature
    everything = torch.cat([pos, cosine(anchor, negatives) / temperature], dim=1)
    return (torch.logsumexp(everything, dim=1) - torch.logsumexp(pos, dim=1)).mean()


def gdwg_weights(losses: Mapping[str, float], reference: Mapping[str, float], temperature: float) -> dict[str, float]:
    """GDWG: w_k = L_k(t-1) / L_k(1); lambda_k = exp(w_k / T) / sum_j exp(w_j / T)."""
    ratios = {k: losses[k] / max(reference[k], 1e-12) for k in losses}
    top = max(ratios.values())
    scores = {k: math.exp((w - top) / temperature) for k, w in ratios.items()}
    total = sum(scores.values())
    return {k: score / total for k, score in scores.items()}


def unimodal_targets(batch, like: torch.Tensor) -> torch.Tensor:
    """[B, 2, 3] targets for `unimodal`: y for the similar features; y_T/y_A/y_V for the dissimilar ones where
    present, else y."""
    y = batch["label"].reshape(-1)
    own = [batch.get(f"label_{key}", y).reshape(-1) for key in "TAV"]
    return torch.stack([torch.stack([y, y, y], dim=1), torch.stack(own, dim=1)], dim=1).to(like.dtype)


def text_anchored(outputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor Ts; positives (Vs, As); negatives (Td, Vd, Ad)."""
    similar, dissimilar = outputs["similar"], outputs["dissimilar"]  # [B, 3, D]: text, audio, vision
    return similar[:, 0], similar[:, [2, 1]], dissimilar[:, [0, 2, 1]]


class DMMSA(Objective):
    """DMMSA's objective: L = L_MSR + L_MSC + lambda_Uni L_Uni + lambda_CL L_CL, the lambdas set per epoch by GDWG.

    - MSR: smooth-L1 between the prediction and the multimodal label y.
    - MSC: cross-entropy of ``logits`` against coarse polarity classes of y (`coarse_labels`:
      the metric family's Acc-3 bins; SIMS y <= -0.1 / |y| within (-0.1, 0.1] / y > 0.1,
      MOSI y < -0.5 / [-0.5, 0.5] / y > 0.5).
    - Uni: smooth-L1 of the shared unimodal MLP on the six features, the similar ones against y,
      the dissimilar ones against y_T/y_A/y_V where the dataset has them (CH-SIMS), else y;
      the mean over the six.
    - CL: Multi-NT-Xent with text as anchor, positives {(Ts,Vs), (Ts,As)}, negatives
      {(Ts,Td), (Ts,Vd), (Ts,Ad)}, cosine similarity, temperature ``temperature``.
    - GDWG over the adjusted tasks (Uni and CL): a *stage* is one training epoch. Epoch 1 trains
      with equal weights (1/2 each, the softmax of equal ratios); the epoch means of the
      unweighted Uni and CL losses in epoch 1 are the references L_k(1); after each epoch t,
      w_k = L_k(t) / L_k(1) and lambda_k = softmax_k(w_k / ``gdwg_temperature``) weight epoch t+1.
      The weights live in this objective and change only in `on_epoch_end`; each epoch's
      weights are logged as ``lambda`` in the run's history.

    Chosen where the paper is silent: ``temperature`` 0.5 is ConFEDE's (``const_heat``);
    ``gdwg_temperature`` 2 is the temperature of Dynamic Weight Averaging (Liu et al., CVPR 2019),
    the scheme GDWG modifies; smooth-L1 uses beta 1.

    Ablations remove one thing and reweight nothing else: ``msc=False`` drops MSC; ``cl=False`` drops
    CL, and lambda_Uni keeps its start value 1/2 for the whole run (a softmax over one task would be 1,
    doubling Uni's weight against the full model's start); ``gdwg=False`` keeps both weights at their
    start values 1/2 for the whole run.
    """

    name = "dmmsa"
    needs = ("prediction", "logits", "unimodal", "similar", "dissimilar")
    tasks = ("regression",)

    def __init__(
        self,
        task,
        msc: bool = True,
        cl: bool = True,
        gdwg: bool = True,
        temperature: float = 0.5,
        gdwg_temperature: float = 2.0,
    ):
        super().__init__(task)
        self.msc, self.cl, self.gdwg = msc, cl, gdwg
        self.temperature, self.gdwg_temperature = temperature, gdwg_temperature
        self.adjusted = ADJUSTED if cl else ("uni",)
        self.reset()

    def reset(self) -> None:
        self.lambdas = {k: 1.0 / len(ADJUSTED) for k in self.adjusted}  # 1/2 each, with or without CL
        self.reference: dict[str, float] | None = None

    def forward(self, outputs, batch):
        y = batch["label"].reshape(-1)
        losses = {"msr": F.smooth_l1_loss(outputs["prediction"].reshape(-1), y)}
        total = losses["msr"]
        if self.msc:
            losses["msc"] = F.cross_entropy(outputs["logits"], coarse_labels(y, self.task.family))
            total = total + losses["msc"]
        unimodal = outputs["unimodal"]
        losses["uni"] = F.smooth_l1_loss(unimodal, unimodal_targets(batch, unimodal))
        total = total + self.lambdas["uni"] * losses["uni"]
        if self.cl:
            losses["cl"] = multi_nt_xent(*text_anchored(outputs), self.temperature)
            total = total + self.lambdas["cl"] * losses["cl"]
        return {"total": total, **losses}

    def on_fit_start(self, run) -> None:
        self.reset()

    def get_extra_state(self):
        """The GDWG weights and references, so that a resumed run continues with them (part of the state_dict)."""
        return {"lambdas": dict(self.lambdas), "reference": self.reference}

    def set_extra_state(self, state) -> None:
        self.lambdas, self.reference = dict(state["lambdas"]), state["reference"]

    def on_epoch_end(self, run, epoch, logs) -> None:
        logs["lambda"] = dict(self.lambdas)  # the weights this epoch trained with
        if not self.gdwg or len(self.adjusted) < 2:  # GDWG off, or nothing left to balance
            return
        current = {k: logs["train"][k] for k in self.adjusted}
        if self.reference is None:
            self.reference = current
        self.lambdas = gdwg_weights(current, self.reference, self.gdwg_temperature)


class UnimodalMSE(Objective):
    """The unimodal pre-training loss of ConFEDE's stages: MSE between the prediction and the modality's own label
    (``label`` T, A or V: CH-SIMS's y_T/y_A/y_V), or the multimodal label y where the dataset has no unimodal
    labels (MOSI, MOSEI)."""

    name = "unimodal-mse"
    tasks = ("regression",)
    tiny = {"label": "T"}

    def __init__(self, task, label: str = "T"):
        super().__init__(task)
        if label not in ("T", "A", "V"):
            raise ValueError(f"objective 'unimodal-mse': label must be T, A or V; got {label!r}")
        self.label = label

    def forward(self, outputs, batch):
        y = batch.get(f"label_{self.label}", batch["label"]).reshape(-1)
        mse = F.mse_loss(outputs["prediction"].reshape(-1), y.to(outputs["prediction"].dtype))
        return {"total": mse, "mse": mse}
