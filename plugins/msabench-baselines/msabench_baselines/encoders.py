"""The unimodal subnetworks LF-DNN, TFN and LMF share (MMSA's TextSubNet and SubNet)."""

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from msabench import Encoder


class LSTMText(Encoder):
    """A one-layer LSTM over a feature sequence; its last state through dropout and a linear layer (MMSA's TextSubNet).

    Departure from MMSA, following the papers' intent: the LSTM stops at each sample's last
    real step (packed sequence); MMSA runs it over the padding and takes the state after it.
    A batch whose sequences all fill the padded length is not packed (nothing to skip).

    On a CPU the LSTM always runs torch's native kernels, not oneDNN's RNN primitive (which torch
    picks for unpacked and for equal-length packed input): 15-30 % faster forward + backward here
    (one thread, batch 32-128, 768-d input, 128 hidden), and the same kernels whatever the
    lengths. Results on data whose text fills the padded length (MOSI-shaped benchmark pickles)
    differ from oneDNN's in rounding; on varying lengths they are what they were.
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
        kernels = native_cpu_kernels() if x.device.type == "cpu" else contextlib.nullcontext()
        if lengths is not None:
            lengths = lengths.cpu().clamp(1, x.shape[1])
            if bool((lengths < x.shape[1]).any()):
                x = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        with kernels:
            _, (state, _) = self.lstm(x)
        return self.linear(self.dropout(state[-1]))


@contextlib.contextmanager
def native_cpu_kernels() -> Iterator[None]:
    """torch's own CPU kernels instead of oneDNN's for the operations inside (the setting is restored after)."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


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
