"""Encoders over a feature sequence (audio frames, vision frames, or MMSA's 768-d text features): a Transformer, an
LSTM, and the sequence itself."""

from __future__ import annotations

import torch
from torch import nn

from msabench import CatalogError, Encoder
from msabench.layers import PackedLSTM
from msabench.pretrained import start_from_checkpoint


class TransformerSequence(Encoder):
    """A linear projection, a learned [CLS] token and positions, a Transformer encoder, LayerNorm, then pooling.

    This is the audio/vision encoder of ConFEDE (Yang et al., ACL 2023) and DMMSA (Liang et al.,
    2025): frames projected to ``d_model``, a [CLS] token prepended, learned position embeddings,
    ``layers`` post-norm GELU Transformer layers that do not attend to padding, LayerNorm, and the
    mean over the sequence. Departure from ConFEDE's code, following the intent: the mean covers
    the [CLS] token and each sample's real frames; ConFEDE averages the padded positions as well.
    ``pooling="cls"`` returns the [CLS] position instead. ``init_from`` starts it from an earlier msabench run's
    checkpoint (which must hold one transformer-seq encoder).
    """

    name = "transformer-seq"
    consumes = "features"
    returns = "vector"
    tiny = {"d_model": 8, "heads": 2, "layers": 1, "feedforward": 16}

    def __init__(
        self,
        spec,
        d_model: int = 768,
        heads: int = 8,
        layers: int = 1,
        feedforward: int | None = None,
        dropout: float = 0.1,
        pooling: str = "mean",
        init_from: str | None = None,
    ):
        super().__init__(spec)
        if pooling not in ("mean", "cls"):
            raise CatalogError(f"encoder 'transformer-seq': pooling {pooling!r} is not one of mean, cls.")
        if d_model % heads:
            raise CatalogError(f"encoder 'transformer-seq': d_model {d_model} is not divisible by heads {heads}.")
        self.max_length = spec.shape[0]
        self.project = nn.Linear(spec.dim, d_model)
        self.cls = nn.Parameter(torch.ones(1, 1, d_model))  # ConFEDE starts the token at ones
        self.positions = nn.Parameter(torch.zeros(1, self.max_length + 1, d_model))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, feedforward or d_model, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.pooling = pooling
        self.out_dim = d_model
        if init_from:  # an earlier run's weights (a multi-stage method's unimodal stage)
            self.started_from = start_from_checkpoint(self, init_from, "<modality>")

    def forward(self, x, lengths):
        batch, steps, _ = x.shape
        if steps > self.max_length:
            raise ValueError(
                f"transformer-seq was built for sequences of at most {self.max_length} steps; got {steps}."
            )
        h = torch.cat([self.cls.expand(batch, -1, -1), self.project(x)], dim=1)
        h = self.dropout(h + self.positions[:, : steps + 1])
        if lengths is None:
            valid = torch.ones(batch, steps + 1, dtype=torch.bool, device=x.device)
        else:
            valid = (
                torch.arange(steps + 1, device=x.device)[None, :] <= lengths.clamp(1, steps)[:, None]
            )  # [CLS] + real frames
        h = self.norm(self.encoder(h, src_key_padding_mask=~valid))
        if self.pooling == "cls":
            return h[:, 0]
        weights = valid.unsqueeze(-1).to(h.dtype)
        return (h * weights).sum(1) / weights.sum(1)


class Identity(Encoder):
    """A modality's feature sequence as it is, ``[B, L, D]``: for fusions that model the sequences themselves
    (MulT, EF-LSTM, MFN, MAG-BERT's audio and vision)."""

    name = "identity"
    consumes = "features"
    returns = "sequence"

    def __init__(self, spec):
        super().__init__(spec)
        self.out_dim = spec.dim

    def forward(self, x, lengths):
        return x


class LSTMSequence(Encoder):
    """An LSTM over each sequence's real frames (packed only when some are shorter than the batch); its last
    layer's final hidden state through dropout and, with ``out``, a linear layer.

    Self-MM's audio and vision subnetworks (MMSA's AuViSubNet: one layer, dropout, linear) and the per-modality
    LSTMs of LF-LSTM. ``bidirectional=True`` concatenates both directions' final states.
    """

    name = "lstm-seq"
    consumes = "features"
    returns = "vector"
    tiny = {"hidden": 8, "out": 4}

    def __init__(
        self,
        spec,
        hidden: int = 64,
        layers: int = 1,
        out: int | None = None,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__(spec)
        self.lstm = PackedLSTM(spec.dim, hidden, layers, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(self.lstm.out_dim, out) if out else None
        self.out_dim = out or self.lstm.out_dim

    def forward(self, x, lengths):
        state = self.dropout(self.lstm.last(x, lengths))  # the last layer, each direction
        return self.linear(state) if self.linear is not None else state
