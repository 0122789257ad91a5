"""Late fusion (LF-DNN), tensor fusion (TFN) and low-rank fusion (LMF)."""

import torch
from torch import nn

from msabench import Fusion

from .dropout import BulkDropout


def head(in_dim: int, hidden: int, out_dim: int, dropout: nn.Module) -> nn.Sequential:
    """Dropout, then two ReLU layers and a linear output: the post-fusion network of LF-DNN and TFN."""
    return nn.Sequential(
        dropout,
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_dim),
    )


class LateConcat(Fusion):
    """Concatenates the modality vectors and predicts with a two-layer ReLU network (LF-DNN)."""

    name = "late-concat"
    late = True  # MultiBench's LF: the reference of effective robustness (`msabench robustness --reference`)
    tiny = {"post_fusion_dim": 8}

    def __init__(self, in_dims, task, post_fusion_dim: int = 128, dropout: float = 0.2):
        super().__init__(in_dims, task)
        self.head = head(sum(in_dims.values()), post_fusion_dim, task.out_dim, nn.Dropout(dropout))

    def forward(self, features, lengths):
        return {"prediction": self.head(torch.cat(list(features.values()), dim=-1))}


class TensorFusion(Fusion):
    """The outer product of the modality vectors, each with a 1 appended, through a ReLU network (Zadeh et al., 2017).

    For regression the output is squashed into the task's label range with a sigmoid. MMSA
    uses sigmoid × 6 − 3 on every dataset, CH-SIMS ([-1, 1]) included; the paper's intent is the
    label range, so SIMS-family datasets get [-1, 1].

    The outer products are batched matrix products (as in MMSA), whose backward needs no
    temporary the size of the fused tensor. The dropout over the fused tensor ((32+1) x (32+1) x
    (128+1) = 140,481 values per sample on MOSI) draws its mask with `BulkDropout`, not torch's
    generator: same probability and scaling, other random masks, and a third of the CPU training
    step less (see its docstring); in place, as nothing else reads the fused tensor.
    """

    name = "tensor-fusion"
    tiny = {"post_fusion_dim": 8}

    def __init__(self, in_dims, task, post_fusion_dim: int = 64, dropout: float = 0.3):
        super().__init__(in_dims, task)
        size = 1
        for dim in in_dims.values():
            size *= dim + 1
        self.head = head(size, post_fusion_dim, task.out_dim, BulkDropout(dropout))
        self.range = task.label_range if task.kind == "regression" else None

    def forward(self, features, lengths):
        fused = None
        for vector in features.values():
            vector = torch.cat([torch.ones_like(vector[:, :1]), vector], dim=1)
            fused = vector if fused is None else torch.bmm(fused.unsqueeze(2), vector.unsqueeze(1)).flatten(1)
        output = self.head(fused)
        if self.range is not None:
            low, high = self.range
            output = torch.sigmoid(output) * (high - low) + low
        return {"prediction": output}


class LowRankFusion(Fusion):
    """Low-rank multimodal fusion (Liu et al., 2018): rank-r factors per modality, multiplied, summed with weights.

    Departure from MMSA, following the paper: the rank weights and bias are trained. MMSA's
    optimizer leaves them out (its parameter slicing skips them), so they keep their
    initial values there. LMF applies no post-fusion dropout, in MMSA as in the original code.
    """

    name = "low-rank-fusion"
    tiny = {"rank": 2}

    def __init__(self, in_dims, task, rank: int = 4):
        super().__init__(in_dims, task)
        out_dim = task.out_dim
        self.factors = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(rank, dim + 1, out_dim)) for m, dim in in_dims.items()}
        )
        self.weights = nn.Parameter(torch.empty(1, rank))
        self.bias = nn.Parameter(torch.zeros(1, out_dim))
        for factor in self.factors.values():
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.weights)

    def forward(self, features, lengths):
        product = None
        for modality, vector in features.items():
            vector = torch.cat([torch.ones_like(vector[:, :1]), vector], dim=1)
            projected = torch.matmul(vector, self.factors[modality])  # [rank, B, out]
            product = projected if product is None else product * projected
        output = torch.matmul(self.weights, product.permute(1, 0, 2)).squeeze(1) + self.bias
        return {"prediction": output}
