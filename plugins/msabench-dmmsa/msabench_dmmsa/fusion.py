"""Feature decomposition: each modality vector split into a similar and a dissimilar part, plus the heads that read
them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from msabench import CatalogError, Fusion

MODALITIES = ("text", "audio", "vision")


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear layers with GELU between them (ConFEDE's BaseClassifier)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.GELU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class Projection(nn.Sequential):
    """LayerNorm -> Linear -> Tanh -> dropout (ConFEDE's projector, which DMMSA cites); ``norm_first=False``:
    Linear -> Tanh -> LayerNorm -> dropout."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, norm_first: bool = True):
        if norm_first:
            super().__init__(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim), nn.Tanh(), nn.Dropout(dropout))
        else:
            super().__init__(nn.Linear(in_dim, out_dim), nn.Tanh(), nn.LayerNorm(out_dim), nn.Dropout(dropout))


class FeatureDecomposition(Fusion):
    """Six projections (text/audio/vision x similar/dissimilar); an MLP on their concatenation predicts.

    DMMSA (Liang et al., 2025) on ConFEDE's decomposition (Yang et al., ACL 2023). Each modality
    vector goes through two projection modules (`Projection`): a *similar* part Ts/As/Vs and a
    *dissimilar* part Td/Ad/Vd. Outputs, modality order text, audio, vision:

    - ``prediction`` [B, out]: MLP([Ts; As; Vs; Td; Ad; Vd]) (sentiment intensity);
    - ``logits`` [B, classes]: a second MLP on the same concatenation (DMMSA's coarse polarity task, MSC);
    - ``unimodal`` [B, 2, 3]: one weight-shared MLP applied to each of the six features
      (row 0 the similar features, row 1 the dissimilar ones);
    - ``similar`` and ``dissimilar`` [B, 3, proj_dim]: the features, for the contrastive loss.

    Sizes follow ConFEDE's released code (XpastaX/ConFEDE, SIMS/model/net/constrastive/TVA_fusion.py):
    projections to half the 768-d encoder width (384), a GELU MLP with hidden sizes
    768/384/192/96 on the concatenation, the shared unimodal MLP 192/96, dropout 0.5 after each
    projection. DMMSA keeps ConFEDE's model and changes the objective; the paper does not list
    these sizes, so they are ConFEDE's. The projection order: DMMSA's equations write Tanh(Linear(.))
    and cite ConFEDE, whose projector is LayerNorm -> Linear -> Tanh -> Dropout; we follow the
    citation (``norm_first=True``; ``False`` puts the LayerNorm after the Tanh).
    """

    name = "feature-decomposition"
    accepts = "vector"
    produces = ("prediction", "logits", "unimodal", "similar", "dissimilar")
    tiny = {"proj_dim": 8, "hidden": (8, 4), "unimodal_hidden": (4,), "dropout": 0.0}

    def __init__(
        self,
        in_dims,
        task,
        proj_dim: int = 384,
        hidden: Sequence[int] = (768, 384, 192, 96),
        unimodal_hidden: Sequence[int] = (192, 96),
        classes: int = 3,
        dropout: float = 0.5,
        norm_first: bool = True,
    ):
        super().__init__(in_dims, task)
        if missing := [m for m in MODALITIES if m not in in_dims]:
            raise CatalogError(
                f"fusion 'feature-decomposition' needs text, audio and vision encoders; missing {missing}."
            )
        self.similar = nn.ModuleDict({m: Projection(in_dims[m], proj_dim, dropout, norm_first) for m in MODALITIES})
        self.dissimilar = nn.ModuleDict({m: Projection(in_dims[m], proj_dim, dropout, norm_first) for m in MODALITIES})
        self.head = mlp(6 * proj_dim, hidden, task.out_dim)
        self.classifier = mlp(6 * proj_dim, hidden, classes)
        self.unimodal = mlp(proj_dim, unimodal_hidden, 1)

    def forward(self, features, lengths):
        similar = torch.stack([self.similar[m](features[m]) for m in MODALITIES], dim=1)  # [B, 3, D]
        dissimilar = torch.stack([self.dissimilar[m](features[m]) for m in MODALITIES], dim=1)
        joint = torch.cat([similar.flatten(1), dissimilar.flatten(1)], dim=1)  # [Ts; As; Vs; Td; Ad; Vd]
        unimodal = self.unimodal(torch.stack([similar, dissimilar], dim=1)).squeeze(-1)  # [B, 2, 3]
        return {
            "prediction": self.head(joint),
            "logits": self.classifier(joint),
            "unimodal": unimodal,
            "similar": similar,
            "dissimilar": dissimilar,
        }


class UnimodalHead(Fusion):
    """The pre-training head of ConFEDE's stages: a GELU MLP (ConFEDE's BaseClassifier, hidden sizes 384/192/96 on
    a 768-d encoder) from the encoder's vector to the prediction. The stages encode one modality; with several,
    it reads their concatenation."""

    name = "unimodal-head"
    accepts = "vector"
    tiny = {"hidden": (8, 4)}

    def __init__(self, in_dims, task, hidden: Sequence[int] = (384, 192, 96)):
        super().__init__(in_dims, task)
        self.order = list(in_dims)
        self.mlp = mlp(sum(in_dims.values()), hidden, task.out_dim)

    def forward(self, features, lengths):
        return {"prediction": self.mlp(torch.cat([features[m] for m in self.order], dim=-1))}
