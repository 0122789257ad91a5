"""EF-LSTM and LF-LSTM, the LSTM baselines of MMSA's and MulT's tables."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from msabench import Fusion, Method, Reported, mmsa_reported
from msabench.layers import PackedLSTM, align_to_text


class StepNorm(nn.Module):
    """BatchNorm with one channel per time step (MMSA's ``nn.BatchNorm1d(seq_len)`` on ``[B, L, D]``): each step
    is normalised over the batch and the features. Statistics and affine weights exist for up to `max_steps`
    steps; a batch of L steps uses the first L."""

    def __init__(self, max_steps: int = 512, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.max_steps, self.momentum, self.eps = max_steps, momentum, eps
        self.weight = nn.Parameter(torch.ones(max_steps))
        self.bias = nn.Parameter(torch.zeros(max_steps))
        self.register_buffer("running_mean", torch.zeros(max_steps))
        self.register_buffer("running_var", torch.ones(max_steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        if steps > self.max_steps:
            raise ValueError(f"StepNorm holds statistics for {self.max_steps} steps; got {steps}.")
        return F.batch_norm(
            x,
            self.running_mean[:steps],  # views: the running statistics are updated in place
            self.running_var[:steps],
            self.weight[:steps],
            self.bias[:steps],
            self.training,
            self.momentum,
            self.eps,
        )


class EarlyFusionLSTM(Fusion):
    """EF-LSTM: the modalities' frames concatenated at every step, each step batch-normalised (MMSA), an LSTM, its
    last layer's final state through dropout, a ReLU layer, dropout and a linear output.

    It needs audio and vision aligned to the text. On data that is not (CH-SIMS has no aligned file), they are
    average-pooled to the text's length first, as MMSA's AlignSubNet (``avg_pool``) does (`msabench.pool_to`).
    Departure from MMSA, following the papers' intent: the LSTM stops at each sample's last real (text) step;
    MMSA runs it over the padding and takes the state after it. MMSA's per-step BatchNorm (statistics over the
    batch and the features, padding included) is not in the paper; it is kept, as MMSA's numbers rest on it.
    """

    name = "early-lstm"
    accepts = "sequence"
    modalities = ("text", "audio", "vision")
    tiny = {"hidden": 8, "layers": 1}

    def __init__(self, in_dims, task, hidden: int = 128, layers: int = 4, dropout: float = 0.5):
        super().__init__(in_dims, task)
        self.norm = StepNorm()
        self.lstm = PackedLSTM(sum(in_dims.values()), hidden, layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, task.out_dim)

    def forward(self, features, lengths):
        x = torch.cat(list(align_to_text(features, "ef-lstm").values()), dim=-1)
        h = self.dropout(F.relu(self.linear(self.dropout(self.lstm.last(self.norm(x), lengths["text"])))))
        return {"prediction": self.out(h)}


MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"
LUO = "Luo et al., Journal of Software 2024, Table 3 (before B-fusion; msabench-awf has the after rows)"

mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)
sims = functools.partial(mmsa_reported, "sims")


def ef_lstm(hidden, layers, dropout, batch, lr, wd):
    return {
        "fusion": {"hidden": hidden, "layers": layers, "dropout": dropout},
        "train": {"batch_size": batch, "lr": lr, "weight_decay": wd},
    }


IDENTITY = {"text": "identity", "audio": "identity", "vision": "identity"}
LSTMS = {"text": "lstm-seq", "audio": "lstm-seq", "vision": "lstm-seq"}

METHODS = [
    Method(
        name="ef-lstm",
        paper="Cambria et al., 2017 (early-fusion LSTM; MMSA's benchmark)",
        url="https://github.com/thuiar/MMSA",
        encoders=IDENTITY,
        fusion="early-lstm",
        objective="l1-ce",
        hparams=ef_lstm(128, 4, 0.5, 32, 1e-3, 5e-3),
        overrides={
            "mosei": ef_lstm(256, 2, 0.4, 128, 5e-3, 1e-4),
            "ch-sims": ef_lstm(32, 3, 0.5, 128, 5e-4, 1e-3),
        },
        reported=(
            Reported("mosi-aligned", MMSA, mosi([77.38, 77.35, 78.48, 78.51, 40.15, 35.39, 94.88, 66.9])),
            Reported("mosei-aligned", MMSA, mosi([77.84, 78.34, 80.79, 80.67, 51.16, 50.01, 60.05, 68.25])),
            Reported("ch-sims", MMSA, sims([69.37, 54.27, 21.23, 56.82, 59.07, 5.45])),
        ),
        tasks=("regression", "multilabel"),
    ),
    Method(
        name="lf-lstm",
        paper="late-fusion LSTM (the baseline of Tsai et al., ACL 2019, Table 1)",
        url="https://github.com/yaohungt/Multimodal-Transformer",
        encoders=LSTMS,
        fusion="late-concat",
        objective="l1-ce",
        hparams={
            "text": {"hidden": 64, "dropout": 0.2},
            "audio": {"hidden": 16, "dropout": 0.2},
            "vision": {"hidden": 32, "dropout": 0.2},
            "fusion": {"post_fusion_dim": 64, "dropout": 0.2},
            "train": {"batch_size": 32, "lr": 1e-3},
        },
        reported=(Reported("mosi", LUO, {"Acc-2_non0": 74.78}),),
        tasks=("regression", "multilabel"),
    ),
]
