"""Self-MM's heads (a multimodal and three unimodal regressions) and its unimodal label generation module."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msabench import Fusion, Objective

MODALITIES = ("text", "audio", "vision")
TASKS = ("M", "T", "A", "V")  # the multimodal task, then one per modality


def branch(in_dim: int, hidden: int, dropout: float, out_dim: int = 1) -> tuple[nn.Module, nn.Module]:
    """(dropout, Linear, ReLU) -> the branch's feature; (Linear, ReLU, Linear) -> its prediction."""
    feature = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU())
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
    return feature, head


class SelfMMHeads(Fusion):
    """Self-MM's fusion: the concatenated modality vectors and each modality vector alone go through their own
    dropout, a ReLU layer (the task's *feature*, what the label generation measures) and a two-layer regression
    head. Outputs: ``prediction`` (multimodal, the task's width), ``prediction_T/A/V`` (one value each) and
    ``feature_M/T/A/V``."""

    name = "self-mm"
    modalities = MODALITIES
    produces = ("prediction", "prediction_T", "prediction_A", "prediction_V", *(f"feature_{t}" for t in TASKS))
    tiny = {"fusion_dim": 8, "text_dim": 4, "audio_dim": 4, "vision_dim": 4}

    def __init__(
        self,
        in_dims,
        task,
        fusion_dim: int = 128,
        text_dim: int = 32,
        audio_dim: int = 16,
        vision_dim: int = 32,
        fusion_dropout: float = 0.0,
        text_dropout: float = 0.1,
        audio_dropout: float = 0.1,
        vision_dropout: float = 0.0,
    ):
        super().__init__(in_dims, task)
        widths = {"M": (sum(in_dims.values()), fusion_dim, fusion_dropout, task.out_dim)}
        widths |= {"T": (in_dims["text"], text_dim, text_dropout), "A": (in_dims["audio"], audio_dim, audio_dropout)}
        widths |= {"V": (in_dims["vision"], vision_dim, vision_dropout)}
        parts = {t: branch(*widths[t]) for t in TASKS}
        self.features = nn.ModuleDict({t: parts[t][0] for t in TASKS})
        self.heads = nn.ModuleDict({t: parts[t][1] for t in TASKS})

    def forward(self, features, lengths):
        inputs = {"M": torch.cat([features[m] for m in MODALITIES], dim=-1)}
        inputs |= {t: features[m] for t, m in zip(TASKS[1:], MODALITIES, strict=True)}
        outputs = {}
        for t in TASKS:
            feature = self.features[t](inputs[t])
            outputs[f"feature_{t}"] = feature
            outputs["prediction" if t == "M" else f"prediction_{t}"] = self.heads[t](feature)
        return outputs


class UnimodalLabels(Objective):
    """Self-MM's loss with its unimodal label generation module (ULGM).

    Per training sample it keeps a label for each task (``labels``: M, T, A, V; M is the annotated label, T/A/V
    start as it) and the last feature seen for each task (``features_<t>``): per-sample state, sized to the
    train split in `on_fit_start` and indexed by ``batch["index"]``, saved in the resume state. The training loss
    is ``sum_t mean(w_t * |prediction_t - label_t|)`` with ``w_M = 1`` and ``w_s = tanh(|label_s - label_M|)``;
    validation and test use the M loss alone.

    After every training batch's backward (`on_after_backward`), from the second epoch on, each unimodal label
    moves towards ``clamp(alpha/2 · y_M + (y_M + delta_s - delta_f)/2, -H, H)`` with the running weights
    ``(n-1)/(n+1)`` (old) and ``2/(n+1)`` (new), ``n`` the epoch; ``delta = (d_neg - d_pos) / d_pos`` from the
    distances of the sample's feature to the centres of the positive and negative samples' stored features
    (positive: label > 0, negative: < 0, zero labels in neither; each task's centres use its own labels),
    ``alpha = delta_s / delta_f``. Then the batch's features are stored. As in MMSA, the centres are those of the
    stored features at that moment (zeros for samples not seen yet in the first epoch).
    """

    name = "self-mm"
    needs = SelfMMHeads.produces
    tasks = ("regression",)
    tiny = {}

    def __init__(self, task, H: float = 3.0):  # noqa: N803 (the paper's and MMSA's name)
        super().__init__(task)
        self.H = H
        self.register_buffer("labels", torch.zeros(0, len(TASKS)))
        for t in TASKS:
            self.register_buffer(f"features_{t}", torch.zeros(0, 0))
        self.epoch = 0
        self.pending: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, run):
        labels = run.data.splits["train"].tensors["label"].float().to(self.labels.device)
        self.labels = labels[:, None].repeat(1, len(TASKS))
        for t in TASKS:
            setattr(self, f"features_{t}", torch.zeros(len(labels), 0, device=self.labels.device))

    def on_epoch_start(self, run, epoch):
        self.epoch = epoch

    def forward(self, outputs, batch):
        prediction = outputs["prediction"].reshape(-1)
        if not self.training:
            return {"total": F.l1_loss(prediction, batch["label"])}
        index = batch["index"].to(prediction.device)
        known = len(self.labels) > 0
        labels = self.labels[index] if known else batch["label"][:, None].repeat(1, len(TASKS))
        losses = {"M": (prediction - labels[:, 0]).abs().mean()}
        for i, t in enumerate(TASKS[1:], 1):
            weight = torch.tanh((labels[:, i] - labels[:, 0]).abs())
            losses[t] = (weight * (outputs[f"prediction_{t}"].reshape(-1) - labels[:, i]).abs()).mean()
        if known:
            self.pending = {"index": index, **{t: outputs[f"feature_{t}"].detach() for t in TASKS}}
        losses["total"] = sum(losses[t] for t in TASKS)
        return losses

    def on_after_backward(self, run, batch):
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        index = pending["index"]
        if self.epoch > 1:
            self.update_labels(pending, index)
        for t in TASKS:
            stored = getattr(self, f"features_{t}")
            if stored.shape[1] != pending[t].shape[1]:
                stored = torch.zeros(len(self.labels), pending[t].shape[1], device=stored.device)
            stored[index] = pending[t]
            setattr(self, f"features_{t}", stored)

    @torch.no_grad()
    def update_labels(self, features: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        """Move the unimodal labels of the samples in `index` towards the ones their features suggest."""
        eps = 1e-8
        y = self.labels[index, 0]

        def delta(i: int, t: str) -> torch.Tensor:
            positive, negative = self.centres(i, t)
            to_positive = (features[t] - positive).norm(dim=-1)
            to_negative = (features[t] - negative).norm(dim=-1)
            return (to_negative - to_positive) / (to_positive + eps)

        delta_f = delta(0, "M")
        n = self.epoch
        for i, t in enumerate(TASKS[1:], 1):
            delta_s = delta(i, t)
            alpha = delta_s / (delta_f + eps)
            new = (0.5 * alpha * y + 0.5 * (y + delta_s - delta_f)).clamp(-self.H, self.H)
            self.labels[index, i] = (n - 1) / (n + 1) * self.labels[index, i] + 2 / (n + 1) * new

    def centres(self, i: int, t: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean stored feature of the samples whose task-`t` label is positive, and of those negative."""
        stored, labels = getattr(self, f"features_{t}"), self.labels[:, i]

        def mean(rows: torch.Tensor) -> torch.Tensor:
            return stored[rows].mean(0) if rows.any() else stored.new_zeros(stored.shape[1])

        return mean(labels > 0), mean(labels < 0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The per-sample state is sized by the run (on_fit_start, the first batch): take the saved sizes.
        for name, buffer in self._buffers.items():
            saved = state_dict.get(prefix + name)
            if saved is not None and buffer is not None and saved.shape != buffer.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=saved.dtype, device=buffer.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
