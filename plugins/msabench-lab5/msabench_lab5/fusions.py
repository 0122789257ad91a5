"""The Lab5 report's two fusion heads."""

from __future__ import annotations

import torch
from torch import nn

from msabench import Fusion


class ConcatLinear(Fusion):
    """One Linear layer on the concatenated modality features (any number of modalities; one gives a unimodal row)."""

    name = "concat-linear"
    late = True  # concatenated unimodal features and a head: late fusion, a reference for effective robustness

    def __init__(self, in_dims, task, dropout: float = 0.0):
        super().__init__(in_dims, task)
        self.order = list(in_dims)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(sum(in_dims.values()), task.out_dim)

    def forward(self, features, lengths):
        return {"prediction": self.linear(self.dropout(torch.cat([features[m] for m in self.order], dim=-1)))}


class CrossModalAttention(Fusion):
    """Text and image to `hidden` (Linear, ReLU, dropout); attention = softmax(Linear(concat)) over the hidden
    features, multiplied into both; concat -> Linear(hidden) -> ReLU -> Linear -> classes."""

    name = "cross-modal-attention"
    modalities = ("text", "image")
    tiny = {"hidden": 8}

    def __init__(self, in_dims, task, hidden: int = 512, dropout: float = 0.1):
        super().__init__(in_dims, task)
        self.text = nn.Sequential(nn.Linear(in_dims["text"], hidden), nn.ReLU(), nn.Dropout(dropout))
        self.image = nn.Sequential(nn.Linear(in_dims["image"], hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention = nn.Linear(2 * hidden, hidden)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, task.out_dim))

    def forward(self, features, lengths):
        text, image = self.text(features["text"]), self.image(features["image"])
        weights = torch.softmax(self.attention(torch.cat([text, image], dim=-1)), dim=-1)
        return {"prediction": self.head(torch.cat([weights * text, weights * image], dim=-1))}
