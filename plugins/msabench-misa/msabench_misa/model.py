"""MISA's parts: the stacked bidirectional LSTM encoder for audio and vision, the shared/private fusion with
its Transformer, and the objective (task loss + orthogonality + CMD similarity + reconstruction)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msabench import Encoder, Fusion, Objective
from msabench.layers import PackedLSTM

MODALITIES = ("text", "audio", "vision")


class StackedBiLSTM(Encoder):
    """MISA's audio/vision encoder: a bidirectional LSTM, LayerNorm over its outputs, a second bidirectional LSTM;
    the final states of both LSTMs (both directions) concatenated, ``[B, 4 * hidden]``.

    ``hidden`` defaults to the input's width, as in MISA and MMSA. Departure from MMSA, following the paper's
    intent: each modality is packed with its own lengths; MMSA packs audio and vision with the *text* lengths,
    so on unaligned data it reads only their first (at most 50) frames."""

    name = "misa-lstm"
    consumes = "features"
    returns = "vector"
    tiny = {"hidden": 4}

    def __init__(self, spec, hidden: int | None = None):
        super().__init__(spec)
        hidden = hidden or spec.dim
        self.first = PackedLSTM(spec.dim, hidden, bidirectional=True)
        self.norm = nn.LayerNorm(2 * hidden)
        self.second = PackedLSTM(2 * hidden, hidden, bidirectional=True)
        self.out_dim = 4 * hidden

    def forward(self, x, lengths):
        outputs, first = self.first(x, lengths)
        _, second = self.second(self.norm(outputs), lengths)
        return torch.cat([*first, *second], dim=-1)


def projection(in_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden))


class SharedPrivate(Fusion):
    """MISA's fusion: each modality projected to `hidden` (Linear, ReLU, LayerNorm); a private encoder per
    modality and one shared encoder (Linear + sigmoid each); reconstructions of the projections from
    private + shared; a one-layer, 2-head Transformer encoder (PyTorch's defaults otherwise: feed-forward 2048,
    dropout 0.1, post-norm ReLU) over the six vectors; their concatenation through Linear(6h, 3h), dropout,
    ReLU and a linear output.

    Besides ``prediction`` it returns, stacked in (text, audio, vision) order as ``[3, B, hidden]``:
    ``projected``, ``private``, ``shared`` and ``reconstructed``, for the `misa` objective. MISA's
    shared/private discriminator is left out: MMSA computes it but no loss uses it.
    """

    name = "misa"
    modalities = MODALITIES
    produces = ("prediction", "projected", "private", "shared", "reconstructed")
    tiny = {"hidden": 8}

    def __init__(self, in_dims, task, hidden: int = 128, dropout: float = 0.2):
        super().__init__(in_dims, task)
        self.project = nn.ModuleDict({m: projection(in_dims[m], hidden) for m in MODALITIES})
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for m in MODALITIES})
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.reconstruct = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in MODALITIES})
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=hidden, nhead=2), num_layers=1, enable_nested_tensor=False
        )
        self.head = nn.Sequential(
            nn.Linear(6 * hidden, 3 * hidden), nn.Dropout(dropout), nn.ReLU(), nn.Linear(3 * hidden, task.out_dim)
        )

    def forward(self, features, lengths):
        projected = torch.stack([self.project[m](features[m]) for m in MODALITIES])
        private = torch.stack([self.private[m](x) for m, x in zip(MODALITIES, projected, strict=True)])
        shared = self.shared(projected)
        reconstructed = torch.stack(
            [self.reconstruct[m](p + s) for m, p, s in zip(MODALITIES, private, shared, strict=True)]
        )
        h = self.transformer(torch.cat([private, shared]))  # six vectors as a sequence: [6, B, hidden]
        return {
            "prediction": self.head(torch.cat(list(h), dim=-1)),
            "projected": projected,
            "private": private,
            "shared": shared,
            "reconstructed": reconstructed,
        }


def orthogonality(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MISA's difference loss: the squared Frobenius norm of the correlation between two batches of vectors,
    each centred over the batch and scaled to unit length (the norms detached, as in MISA), divided by d^2."""
    a, b = a - a.mean(0, keepdim=True), b - b.mean(0, keepdim=True)
    a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
    b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (a.t() @ b).pow(2).mean()


def cmd(a: torch.Tensor, b: torch.Tensor, moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy (Zellinger et al., 2017) as MISA computes it: the distance of the means plus the
    distances of the central moments 2..`moments`."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    total = (mean_a - mean_b).pow(2).sum().sqrt()
    for k in range(2, moments + 1):
        total = total + ((a - mean_a).pow(k).mean(0) - (b - mean_b).pow(k).mean(0)).pow(2).sum().sqrt()
    return total


class MISALoss(Objective):
    """Task loss + ``diff`` · difference + ``sim`` · similarity + ``recon`` · reconstruction (MISA).

    Task loss: mean squared error (regression; MISA and MMSA), or cross-entropy for classes. Difference: the
    orthogonality of each private vector to its shared one and of the three private vectors to each other (six
    pairs, summed). Similarity: CMD (5 moments) between the shared vectors of each pair of modalities, averaged.
    Reconstruction: the mean squared error of each reconstruction against its projection, averaged. Validation
    and test losses are the task loss alone, as in MMSA."""

    name = "misa"
    needs = ("prediction", "projected", "private", "shared", "reconstructed")
    tasks = ("regression", "classification")
    tiny = {}

    def __init__(self, task, diff: float = 0.1, sim: float = 0.3, recon: float = 1.0):
        super().__init__(task)
        self.weights = {"diff": diff, "sim": sim, "recon": recon}

    def forward(self, outputs, batch):
        prediction = outputs["prediction"]
        if self.task.kind == "regression":
            task = F.mse_loss(prediction.reshape(-1), batch["label"])
        else:
            task = F.cross_entropy(prediction, batch["label"])
        if not self.training:
            return {"total": task}
        private, shared = outputs["private"], outputs["shared"]
        t, a, v = range(3)
        diff = sum(orthogonality(private[i], shared[i]) for i in range(3))
        diff = diff + orthogonality(private[a], private[t]) + orthogonality(private[a], private[v])
        diff = diff + orthogonality(private[t], private[v])
        sim = (cmd(shared[t], shared[v]) + cmd(shared[t], shared[a]) + cmd(shared[a], shared[v])) / 3
        recon = F.mse_loss(outputs["reconstructed"], outputs["projected"])
        losses = {"task": task, "diff": diff, "sim": sim, "recon": recon}
        losses["total"] = task + sum(self.weights[k] * losses[k] for k in self.weights)
        return losses
