"""The unimodal subnetworks LF-DNN, TFN and LMF share (MMSA's TextSubNet and SubNet)."""

import torch
from torch import nn

from msabench import Encoder


class LSTMText(Encoder):
    """A one-layer LSTM over a feature sequence; its last state through dropout and a linear layer (MMSA's TextSubNet).

    Departure from MMSA, following the papers' intent: the LSTM stops at each sample's last
    real step (packed sequence); MMSA runs it over the padding and takes the state after it.
    """

    name = "lstm-text"
    tiny = {"hidden": 8, "out": 4}

    def __init__(self, spec, hidden: int = 128, out: int = 32, dropout: float = 0.0):
        super().__init__(spec)
        self.lstm = nn.LSTM(spec.dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, out)
        self.out_dim = out

    def forward(self, x, lengths):
        if lengths is not None:
            x = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu().clamp(1, x.shape[1]), batch_first=True, enforce_sorted=False
            )
        _, (state, _) = self.lstm(x)
        return self.linear(self.dropout(state[-1]))


class MeanMLP(Encoder):
    """The time average of a feature sequence through BatchNorm, dropout and three ReLU layers (MMSA's SubNet).

    Departure from MMSA, following the papers' intent: the average covers each sample's real
    frames only; MMSA averages over the whole padded length, zeros included.
    """

    name = "mean-mlp"
    tiny = {"hidden": 4}

    def __init__(self, spec, hidden: int = 32, dropout: float = 0.2):
        super().__init__(spec)
        self.net = nn.Sequential(
            nn.BatchNorm1d(spec.dim),
            nn.Dropout(dropout),
            nn.Linear(spec.dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.out_dim = hidden

    def forward(self, x, lengths):
        return self.net(masked_mean(x, lengths))


def masked_mean(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Mean over the first `lengths[i]` steps of each sequence in `x` [B, L, D]."""
    if lengths is None:
        return x.mean(1)
    steps = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
    return (x * steps[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)
