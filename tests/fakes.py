"""Fake plugins for host tests: small, valid components that tests then break one way at a time."""

import torch
from torch import nn

from msabench import Encoder, Fusion, Method, Objective, Task, hookimpl
from msabench.core.synthetic import SyntheticMMSA


class TinyData(SyntheticMMSA):
    """Tiny synthetic MMSA-layout data for host tests."""

    name = "tiny-data"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    dims = {"text": 8, "audio": 3, "vision": 4}
    sizes = {"train": 48, "valid": 24, "test": 24}
    lengths = {"text": 8, "audio": 6, "vision": 5}
    files = {"tiny-data/Processed/unaligned.pkl": None}


class MeanEncoder(Encoder):
    """Mean over time, then a linear layer."""

    name = "mean-linear"

    def __init__(self, spec, width: int = 4):
        super().__init__(spec)
        self.linear = nn.Linear(spec.dim, width)
        self.out_dim = width

    def forward(self, x, lengths):
        return self.linear(x.mean(1))


class ConcatFusion(Fusion):
    """Concatenate and predict with a linear layer."""

    name = "fake-concat"

    def __init__(self, in_dims, task, dropout: float = 0.0):
        super().__init__(in_dims, task)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(sum(in_dims.values()), task.out_dim)

    def forward(self, features, lengths):
        return {"prediction": self.linear(self.dropout(torch.cat(list(features.values()), -1)))}


class SharedFusion(ConcatFusion):
    """Like fake-concat, and also exposes the fused vector."""

    name = "fake-shared"
    produces = ("prediction", "shared")

    def forward(self, features, lengths):
        fused = torch.cat(list(features.values()), -1)
        return {"prediction": self.linear(fused), "shared": fused}


class NeedsShared(Objective):
    """L1 plus a penalty on the shared vector."""

    name = "needs-shared"
    needs = ("prediction", "shared")

    def forward(self, outputs, batch):
        l1 = (outputs["prediction"].reshape(-1) - batch["label"]).abs().mean()
        return {"total": l1 + 0.01 * outputs["shared"].pow(2).mean(), "l1": l1}


ENCODERS = {"text": "mean-linear", "audio": "mean-linear", "vision": "mean-linear"}
TINY = Method(
    name="tiny",
    paper="A test method",
    encoders=ENCODERS,
    fusion="fake-concat",
    objective="l1",
    hparams={"train": {"batch_size": 16, "lr": 1e-2}},
)


class Plugin:
    """A valid plugin: one of each kind (the core plugin supplies the `l1` objective)."""

    @hookimpl
    def register_datasets(self, register):
        register(TinyData)

    @hookimpl
    def register_encoders(self, register):
        register(MeanEncoder)

    @hookimpl
    def register_fusions(self, register):
        register(ConcatFusion)
        register(SharedFusion)

    @hookimpl
    def register_objectives(self, register):
        register(NeedsShared)

    @hookimpl
    def register_methods(self, register):
        register(TINY)
