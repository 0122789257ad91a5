"""The Memory Fusion Network: one LSTM per modality, a delta-memory attention over two consecutive memory
states, and a multi-view gated memory."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msabench import Fusion
from msabench.layers import align_to_text

MODALITIES = ("text", "audio", "vision")


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear, ReLU, dropout, Linear: every small network of MFN."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


class MemoryFusion(Fusion):
    """MFN (Zadeh et al., AAAI 2018) over word-aligned sequences.

    At every step each modality's LSTM cell advances; the Delta-memory Attention Network scores the cell states
    of the previous and the current step (window 2) with a softmax over their concatenation (``attention``
    network), the attended states are summarised (``summary``, tanh) into a memory update, and the Multi-view
    Gated Memory keeps ``retain * memory + update_gate * update`` (both gates sigmoid networks of the attended
    states and the memory). The last hidden states and the memory go through a ReLU layer, dropout and a linear
    output. Widths and dropouts are MMSA's ``hidden_dims``, ``memsize``, ``NN1Config`` (attention),
    ``NN2Config`` (summary), ``gamma1Config`` (retain), ``gamma2Config`` (update gate) and ``outConfig``.

    Departure from MMSA, following the paper's intent: a sequence's states stop changing after its last real
    (text) step, so each sample's representation is taken at its last real step; MMSA runs the cells through
    the padding and takes the state after the last padded step. On data that is not word-aligned (CH-SIMS),
    audio and vision are average-pooled to the text's length first, as MMSA's AlignSubNet does.
    """

    name = "memory-fusion"
    accepts = "sequence"
    modalities = MODALITIES
    tiny = {"hidden": [4, 3, 3], "memory": 4, "attention": [4, 0.0], "summary": [4, 0.0], "output": [4, 0.0]}

    def __init__(
        self,
        in_dims,
        task,
        hidden: list[int] = (256, 32, 256),
        memory: int = 400,
        attention: list = (32, 0.2),
        summary: list = (64, 0.0),
        retain: list = (256, 0.7),
        update: list = (32, 0.5),
        output: list = (128, 0.0),
    ):
        super().__init__(in_dims, task)
        if len(hidden) != 3:
            raise ValueError(f"hidden lists the text, audio and vision LSTM widths; got {list(hidden)}")
        self.hidden = dict(zip(MODALITIES, hidden, strict=True))
        self.cells = nn.ModuleDict({m: nn.LSTMCell(in_dims[m], self.hidden[m]) for m in MODALITIES})
        total = sum(hidden)
        window = 2 * total  # the cell states of two consecutive steps
        self.memory_size = memory
        self.attention = mlp(window, int(attention[0]), window, float(attention[1]))
        self.summary = mlp(window, int(summary[0]), memory, float(summary[1]))
        self.retain = mlp(window + memory, int(retain[0]), memory, float(retain[1]))
        self.update = mlp(window + memory, int(update[0]), memory, float(update[1]))
        self.head = nn.Sequential(
            nn.Linear(total + memory, int(output[0])),
            nn.ReLU(),
            nn.Dropout(float(output[1])),
            nn.Linear(int(output[0]), task.out_dim),
        )

    def forward(self, features, lengths):
        features = align_to_text(features, "mfn")
        text = features["text"]
        batch, steps = text.shape[:2]
        real = lengths["text"].clamp(1, steps) if lengths["text"] is not None else None
        h = {m: text.new_zeros(batch, self.hidden[m]) for m in MODALITIES}
        c = {m: text.new_zeros(batch, self.hidden[m]) for m in MODALITIES}
        memory = text.new_zeros(batch, self.memory_size)
        for t in range(steps):
            previous = torch.cat([c[m] for m in MODALITIES], dim=1)
            new = {m: self.cells[m](features[m][:, t], (h[m], c[m])) for m in MODALITIES}
            both = torch.cat([previous, *(new[m][1] for m in MODALITIES)], dim=1)
            attended = F.softmax(self.attention(both), dim=1) * both
            proposal = torch.tanh(self.summary(attended))
            gates = torch.cat([attended, memory], dim=1)
            updated = torch.sigmoid(self.retain(gates)) * memory + torch.sigmoid(self.update(gates)) * proposal
            if real is None:
                h = {m: new[m][0] for m in MODALITIES}
                c = {m: new[m][1] for m in MODALITIES}
                memory = updated
            else:
                active = (t < real)[:, None]  # padding steps leave every state as it was
                h = {m: torch.where(active, new[m][0], h[m]) for m in MODALITIES}
                c = {m: torch.where(active, new[m][1], c[m]) for m in MODALITIES}
                memory = torch.where(active, updated, memory)
        return {"prediction": self.head(torch.cat([*(h[m] for m in MODALITIES), memory], dim=1))}
