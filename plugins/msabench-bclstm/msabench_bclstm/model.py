"""bc-LSTM's parts: the contextual LSTM over the utterances of a video (as a unimodal encoder and as the multimodal
fusion), the softmax head, and the cross-entropy of the label's polarity.

Every part reads the utterances of a batch as whole videos: the host batches whole groups for methods with
``batches="groups"`` and gives contextual components the batch's ``group`` ids; `msabench.layers.Groups` turns the
flat batch ``[N, D]`` into one padded sequence per video ``[G, L, D]`` and back.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn import functional as F

from msabench import Callback, Encoder, Fusion, Objective, Range, Task
from msabench.layers import Groups, PackedLSTM, masked_mean
from msabench.pretrained import start_from_checkpoint

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
Rate = Annotated[float, Range(0, 1, high_open=True)]


class ContextualLSTM(nn.Module):
    """One contextual LSTM of bc-LSTM (Poria et al., ACL 2017, Figure 2; the upstream ``lstm.py``'s network up to its
    penultimate layer): a bidirectional LSTM over the utterances of each video, dropout, and a dense layer applied to
    every utterance, whose outputs are the utterances' contextual features.

    ``input_dropout`` drops input units with one mask per video for all its utterances (the variational dropout of
    Keras's ``LSTM(dropout=...)``, which draws one mask per gate; here one for all four). The LSTM reads each video
    to its last real utterance (Keras's ``Masking``: the padding changes nothing)."""

    def __init__(self, in_dim: int, hidden: int, width: int, activation: str, input_dropout: float, dropout: float):
        super().__init__()
        self.input_dropout = input_dropout
        self.lstm = PackedLSTM(in_dim, hidden, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(self.lstm.out_dim, width)
        self.activation = ACTIVATIONS[activation]
        self.out_dim = width

    def forward(self, x: torch.Tensor, groups: torch.Tensor | None) -> torch.Tensor:
        """``[N, in_dim]`` utterances (a batch of whole videos) -> ``[N, width]`` contextual features."""
        videos = Groups(groups if groups is not None else torch.arange(len(x), device=x.device))
        padded = videos.pad(x)
        if self.training and self.input_dropout > 0:
            keep = 1.0 - self.input_dropout
            mask = torch.empty(padded.shape[0], 1, padded.shape[2], device=x.device).bernoulli_(keep) / keep
            padded = padded * mask.to(padded.dtype)
        outputs, _ = self.lstm(padded, videos.lengths)
        return videos.flat(self.activation(self.dense(self.dropout(outputs))))


class ContextEncoder(Encoder, Callback):
    """bc-LSTM's unimodal contextual network (level 1 of its hierarchy): each utterance's feature vector (the mean
    over its frames; bc-LSTM's utterance features are sequences of length 1) read in the context of its video by a
    `ContextualLSTM`: bidirectional LSTM of 300 units (input dropout 0.6), dropout 0.9, dense 100 with tanh.

    ``standardize=True`` (the default) first scales each feature to zero mean and unit variance with the train
    split's statistics, computed when training starts and kept as buffers (so in checkpoints); upstream code does
    not (its scaling is commented out), and then the openSMILE audio vectors (values up to 356) saturate the LSTM,
    which answers one class for every utterance. ``standardize=False`` is upstream's.

    ``freeze=True`` keeps it in eval mode with no gradient (the fusion stage reads the features its unimodal stage
    learned, as the paper does); ``init_from`` starts it from that stage's checkpoint."""

    name = "bc-lstm-context"
    consumes = "features"
    returns = "vector"
    contextual = True
    tiny = {"hidden": 4, "width": 3}

    def __init__(
        self,
        spec,
        hidden: int = 300,
        width: int = 100,
        activation: Literal["tanh", "relu"] = "tanh",
        input_dropout: Rate = 0.6,
        dropout: Rate = 0.9,
        standardize: bool = True,
        freeze: bool = False,
        init_from: str | None = None,
    ):
        super().__init__(spec)
        self.key, self.standardize = spec.name, standardize
        self.register_buffer("mean", torch.zeros(spec.dim))
        self.register_buffer("std", torch.ones(spec.dim))
        self.context = ContextualLSTM(spec.dim, hidden, width, activation, input_dropout, dropout)
        self.out_dim = width
        if init_from:  # the unimodal stage's weights (bc-LSTM's hierarchy)
            self.started_from = start_from_checkpoint(self, init_from, spec.name)
        if freeze:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> ContextEncoder:
        return super().train(mode and not self.frozen)

    def on_fit_start(self, run) -> None:
        """The train split's per-feature mean and standard deviation (of each utterance's vector)."""
        if not self.standardize:
            return
        split = run.data.splits["train"]
        vectors = self.vectors(split.tensors[self.key], split.tensors.get(f"{self.key}_lengths")).double()
        self.mean.copy_(vectors.mean(0).to(self.mean))
        self.std.copy_(vectors.std(0).clamp_min(1e-6).to(self.std))

    def vectors(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return masked_mean(x, lengths) if x.dim() == 3 else x

    def forward(self, x, lengths, groups=None):
        vectors = self.vectors(x, lengths)
        if self.standardize:
            vectors = (vectors - self.mean) / self.std
        return self.context(vectors, groups)


def answer(scores: torch.Tensor, task: Task) -> dict[str, torch.Tensor]:
    """The outputs of a classifier head from its `scores`. On a regression task bc-LSTM is a binary classifier of the
    label's polarity (score >= 0 positive): ``logits`` [B, 2] (negative, positive), and ``prediction`` [B, 1] the
    signed margin logit(positive) - logit(negative), the log-odds of the positive class, so that ``prediction >= 0``
    is exactly its decision (P(positive) >= 0.5) and the family's Acc-2/F1 (has0) are its binary accuracy and F1. On
    a classification task the logits are the prediction."""
    if task.kind != "regression":
        return {"prediction": scores, "logits": scores}
    return {"prediction": scores[:, 1:] - scores[:, :1], "logits": scores}


def logits(task: Task) -> int:
    """How many logits the head gives: two (negative, positive) on a regression task, one per class otherwise."""
    return 2 if task.kind == "regression" else task.out_dim


class SoftmaxHead(Fusion):
    """The top of bc-LSTM's unimodal network: dropout 0.9 on the contextual features, then the softmax layer (one
    per utterance; softmax in the loss). With several modalities, their features are concatenated."""

    name = "bc-lstm-head"
    accepts = "vector"
    produces = ("prediction", "logits")

    def __init__(self, in_dims, task, dropout: Rate = 0.9):
        super().__init__(in_dims, task)
        self.task = task
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(sum(in_dims.values()), logits(task))

    def forward(self, features, lengths):
        return answer(self.linear(self.dropout(torch.cat(list(features.values()), -1))), self.task)


class ContextFusion(Fusion):
    """bc-LSTM's multimodal level (the hierarchical framework): the unimodal contextual features of each utterance
    concatenated and read in the context of its video by a second `ContextualLSTM` (bidirectional LSTM of 300 units,
    input dropout 0.4, dropout 0.9, dense 500 with ReLU), then dropout 0.9 and the softmax layer."""

    name = "bc-lstm-fusion"
    accepts = "vector"
    contextual = True
    produces = ("prediction", "logits")
    tiny = {"hidden": 4, "width": 5}

    def __init__(
        self,
        in_dims,
        task,
        hidden: int = 300,
        width: int = 500,
        activation: Literal["tanh", "relu"] = "relu",
        input_dropout: Rate = 0.4,
        dropout: Rate = 0.9,
    ):
        super().__init__(in_dims, task)
        self.task = task
        self.modalities = list(in_dims)
        self.context = ContextualLSTM(sum(in_dims.values()), hidden, width, activation, input_dropout, dropout)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(width, logits(task))

    def forward(self, features, lengths, groups=None):
        fused = self.context(torch.cat([features[m] for m in self.modalities], -1), groups)
        return answer(self.linear(self.dropout(fused)), self.task)


class PolarityCrossEntropy(Objective):
    """Cross-entropy of the two logits against the label's polarity (score >= 0: positive, zero counted positive, as
    bc-LSTM's release labels MOSI), averaged over the utterances of the batch (Keras's temporal sample weights over
    the real utterances)."""

    name = "polarity-cross-entropy"
    needs = ("logits",)
    tasks = ("regression",)

    def forward(self, outputs, batch):
        positive = (batch["label"].reshape(-1) >= 0).long()
        return {"total": F.cross_entropy(outputs["logits"], positive)}
