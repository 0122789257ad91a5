"""DECA and IDCA, the two cross-attentions of Ye et al., and the fusion that combines them.

Both attentions compare every query sample with every key sample **of the same mini-batch**
("expanded ... to enable pairwise comparison across the batch"): scores are [B, B], the softmax
runs over the batch's samples, and each sample's output mixes the values of the other samples.
A prediction therefore depends on which samples share its batch and on the batch size. This is
implemented as the paper describes; the evaluation batch size is fixed in the method's
hyper-parameters (``train.eval_batch_size``, recorded in every result) and evaluation batches
are never shuffled, so results are reproducible, but they are not per-sample predictions.
"""

from __future__ import annotations

import torch
from torch import nn

from msabench import Fusion


def deca_logits(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """-sum_d |q_i - k_j| * sigmoid(q_i + k_j) for projected queries q [B, d] and keys k [B, d]: [B, B]."""
    distance = (q[:, None, :] - k[None, :, :]).abs()
    scale = torch.sigmoid(q[:, None, :] + k[None, :, :])
    return -(distance * scale).sum(-1)


def deca_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """DECA's [B, B] scores as the paper writes them: exp(-sum_d |q_i - k_j| * sigmoid(q_i + k_j)).

    The paper then takes a softmax over the keys. Applied to these already-exponentiated scores,
    a softmax bounds every weight ratio by e, and with a few hundred dimensions the scores are
    ~1e-30, so the attention is exactly uniform and cannot learn. We read the two steps as one
    normalisation, attn_ij = exp(-d_ij) / sum_k exp(-d_ik) = softmax_j(-d_ij) (`deca_logits`).
    """
    return torch.exp(deca_logits(q, k))


def idca_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """IDCA's [B, B] scores: sum_d (q_i * k_j) * relu(q_i - k_j)."""
    interaction = q[:, None, :] * k[None, :, :]
    difference = torch.relu(q[:, None, :] - k[None, :, :])
    return (interaction * difference).sum(-1)


class BatchCrossAttention(nn.Module):
    """Q = W_q query, K = W_k key, V = W_v query; attn = softmax_j(logits(Q_i, K_j)); LayerNorm(query + attn V).

    As in the paper, the values come from the query's modality (image low features are Q and V
    with text low features as K, and the reverse). DECA's logits are `deca_logits` (its scores
    normalised over the keys), IDCA's are its scores (`idca_scores`).
    """

    def __init__(self, dim: int, logits):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.logits = logits
        self.norm = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        attention = torch.softmax(self.logits(self.q(query), self.k(key)), dim=-1)
        return self.norm(query + attention @ self.v(query))


def projection(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear, then normalisation, non-linearity and dropout."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU(), nn.Dropout(dropout))


class DualCrossAttention(Fusion):
    """DECA on low (coarse) and IDCA on high (fine) projections of text and image features, fused and classified.

    Both attentions run in both directions; the outputs are combined as Linear(concat(x f_t2v_low,
    x f_v2t_low, y v_high + z f_t2v_high, y t_high + z f_v2t_high)) -> refinement -> classifier.

    ``attention``: "both", "deca", "idca" or "none" (the ablations; a removed attention passes its
    query features through). ``weights``: [x, y, z] (the paper's best is 1.2, 0.7, 0.3) or
    "adaptive", where the batch's weights come from cosine similarities (see `adaptive_weights`).
    f_t2v are the image-side outputs (image queries and values, text keys), f_v2t the text-side ones.
    """

    name = "dual-cross-attention"
    modalities = ("text", "image")
    tiny = {"low_dim": 4, "high_dim": 12, "hidden": 8}

    def __init__(
        self,
        in_dims,
        task,
        low_dim: int = 256,
        high_dim: int = 1024,
        hidden: int = 512,
        dropout: float = 0.1,
        attention: str = "both",
        weights: list[float] | str = (1.2, 0.7, 0.3),
    ):
        super().__init__(in_dims, task)
        if attention not in ("both", "deca", "idca", "none"):
            raise ValueError(f"attention must be 'both', 'deca', 'idca' or 'none'; got {attention!r}")
        if weights != "adaptive" and (isinstance(weights, str) or len(weights) != 3):
            raise ValueError(f"weights must be [x, y, z] or 'adaptive'; got {weights!r}")
        self.attention, self.weights = attention, weights if weights == "adaptive" else tuple(float(w) for w in weights)
        self.text_low, self.image_low = (
            projection(in_dims["text"], low_dim, dropout),
            projection(in_dims["image"], low_dim, dropout),
        )
        self.text_high, self.image_high = (
            projection(in_dims["text"], high_dim, dropout),
            projection(in_dims["image"], high_dim, dropout),
        )
        if attention in ("both", "deca"):
            self.deca_t2v, self.deca_v2t = (
                BatchCrossAttention(low_dim, deca_logits),
                BatchCrossAttention(low_dim, deca_logits),
            )
        if attention in ("both", "idca"):
            self.idca_t2v, self.idca_v2t = (
                BatchCrossAttention(high_dim, idca_scores),
                BatchCrossAttention(high_dim, idca_scores),
            )
        self.fuse = nn.Linear(2 * low_dim + 2 * high_dim, hidden)
        self.refine = nn.Sequential(
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(hidden, task.out_dim)

    def forward(self, features, lengths):
        t, v = features["text"], features["image"]
        t_low, v_low, t_high, v_high = self.text_low(t), self.image_low(v), self.text_high(t), self.image_high(v)
        if self.attention in ("both", "deca"):
            t2v_low, v2t_low = self.deca_t2v(v_low, t_low), self.deca_v2t(t_low, v_low)
        else:
            t2v_low, v2t_low = v_low, t_low
        if self.attention in ("both", "idca"):
            t2v_high, v2t_high = self.idca_t2v(v_high, t_high), self.idca_v2t(t_high, v_high)
        else:
            t2v_high, v2t_high = v_high, t_high
        if self.weights == "adaptive":
            x, y, z = adaptive_weights((t_low, v_low), (t_high, v_high), (v2t_high, t2v_high))
        else:
            x, y, z = self.weights
        fused = torch.cat([x * t2v_low, x * v2t_low, y * v_high + z * t2v_high, y * t_high + z * v2t_high], dim=-1)
        return {"prediction": self.classifier(self.refine(self.fuse(fused)))}


def adaptive_weights(
    low: tuple[torch.Tensor, torch.Tensor],
    high: tuple[torch.Tensor, torch.Tensor],
    attended: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's self-adaptive (x, y, z), one scalar each for the whole batch.

    Each is the cosine similarity of the text-side and the image-side vectors of the same sample in one feature
    space, averaged over the batch and mapped from [-1, 1] to [0, 1] by (1 + s) / 2; x, y and z are those values
    (proportional, with factor 1):

    - x, "the low-dimensional similarity": cos(t_low_i, v_low_i), the low (DECA) projections of text and image;
    - y, "the high-dimensional raw feature similarity": cos(t_high_i, v_high_i), the high (IDCA) projections;
    - z, "the high-dimensional cross-attention similarity": cos(f_v2t_high_i, f_t2v_high_i), IDCA's outputs on the
      text side and on the image side.

    The weights are computed from the features, not learned: no gradient flows through them."""

    def similarity(pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        text, image = (vector.detach() for vector in pair)
        return (1 + nn.functional.cosine_similarity(text, image, dim=-1, eps=1e-8).mean()) / 2

    return similarity(low), similarity(high), similarity(attended)
