"""ConFEDE's objective (Yang et al., ACL 2023; XpastaX/ConFEDE): a contrast over retrieved neighbour samples and
within each sample, on the similar/dissimilar features of `feature-decomposition`.

**Neighbours** (ConFEDE's data sampler, ``dataloader/*.py``). Every ``refresh_every`` epochs (epochs 1, 11, 21, ...),
the encoders' outputs for the whole train split (eval mode, no gradient) are concatenated per sample, and each
sample's other train samples are ranked by the cosine similarity of these vectors. Three lists of at most
``candidates`` samples are kept per anchor: *ss*, the most similar ones with the anchor's label class, taken from
the more similar half; *sd*, the most similar ones with another class, from the same half; *dd*, the least similar
ones with another class, from the less similar half. Label classes: CH-SIMS labels as they are (multiples of 0.2),
MOSI/MOSEI labels rounded to whole numbers. Each training step draws, per anchor, two distinct samples of each list
(ss, ss, dd, dd, sd, sd) with this objective's own seeded generator; a list with one candidate gives it twice, an
empty one draws from the whole train split.

**Losses.** The neighbours go through the model too (training mode), and

    L = L_reg + 0.1 L_CL + 0.01 L_Uni

with L_reg the MSE of the predictions of the batch and its neighbours, L_Uni the MSE of the shared unimodal head
on the six features of all of them (similar features against y, dissimilar ones against y_T/y_A/y_V where the
dataset has them, else y), and L_CL ConFEDE's NT-Xent (temperature 0.5) per anchor over its 42 feature vectors
(six kinds T_s, V_s, A_s, T_d, V_d, A_d of the anchor 0 and its neighbours 1-6), averaged over the anchors:

- positives: T0s-T1s, T0s-T2s, V0s-V1s, V0s-V2s, A0s-A1s, A0s-A2s (the anchor and its ss neighbours), and
  Tjs-Vjs, Tjs-Ajs for j = 0..6 (within each sample);
- negatives: T0s-T3s..T6s, V0s-V3s..V6s, A0s-A3s..A6s (the dd and sd neighbours), and Tjs-Tjd, Tjs-Vjd, Tjs-Ajd;
- each positive pair (a, p) gives -log(e^{s(a,p)/t} / (e^{s(a,p)/t} + sum_n e^{w(a,n) s(a,n)/t})) over the
  negatives n of the same anchor a (cosine similarity s), and the pairs are averaged.

**Label-weighted negatives** (``label_weighted``): the inter-sample negatives' similarities are scaled by
w = |y_a - y_n| / 2, so a negative whose label is close to the anchor's pushes less (ConFEDE's
``weighted_NTXentLoss``). The released code has this weighting but never passes it labels (``update_label`` is not
called), so its runs use w = 1: ``label_weighted=False`` reproduces that. Intra-sample negatives keep w = 1: the
label difference of a sample with itself is 0, which would remove the similar-vs-dissimilar contrast.

Departure from the released code, following its intent: its sampler stores *rank positions* in the neighbour lists
and uses them as sample indices (so the "neighbours" are the first and last rows of the train split); we store the
ranked samples themselves, and skip the anchor itself.

Validation and test losses are L_reg + 0.01 L_Uni on the samples alone, as in ConFEDE's evaluation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from msabench import Batch, Objective

from .objectives import unimodal_targets

# Feature kinds in ConFEDE's order (T_s, V_s, A_s, T_d, V_d, A_d) as (part, index in the fusion's text/audio/vision).
KINDS = (("similar", 0), ("similar", 2), ("similar", 1), ("dissimilar", 0), ("dissimilar", 2), ("dissimilar", 1))
SAMPLES = 7  # the anchor and its six neighbours: ss, ss, dd, dd, sd, sd


def row(kind: int, sample: int) -> int:
    """The row of (feature kind, sample) among an anchor's 42 vectors."""
    return SAMPLES * kind + sample


T_S, V_S, A_S, T_D, V_D, A_D = range(6)
POSITIVES = [(row(k, 0), row(k, j)) for k in (T_S, V_S, A_S) for j in (1, 2)]
POSITIVES += [(row(T_S, j), row(k, j)) for j in range(SAMPLES) for k in (V_S, A_S)]
INTER_NEGATIVES = [(row(k, 0), row(k, j)) for k in (T_S, V_S, A_S) for j in (3, 4, 5, 6)]
INTRA_NEGATIVES = [(row(T_S, j), row(k, j)) for j in range(SAMPLES) for k in (T_D, V_D, A_D)]


def label_classes(labels: torch.Tensor, family: str) -> torch.Tensor:
    """What counts as the same label when neighbours are retrieved: SIMS labels as they are (to 1e-3), MOSI/MOSEI
    labels rounded to whole numbers (ConFEDE's MOSI/MOSEI samplers round them)."""
    labels = labels.reshape(-1).double()
    return torch.round(labels * 1000).long() if family == "sims" else torch.round(labels).long()


def first(candidates: torch.Tensor, keep: torch.Tensor, count: int) -> torch.Tensor:
    """Per row, the first `count` entries of `candidates` where `keep` holds, in order; -1 where there are fewer."""
    width = candidates.shape[1]
    key = (~keep).long() * width + torch.arange(width, device=candidates.device)
    order = key.argsort(dim=1)[:, :count]
    picked = candidates.gather(1, order)
    return torch.where(keep.gather(1, order), picked, torch.full_like(picked, -1))


def neighbour_lists(embeddings: torch.Tensor, classes: torch.Tensor, count: int, chunk: int = 512) -> torch.Tensor:
    """[N, 3, count] train-sample indices (-1: none) of each sample's ss, dd and sd lists (see the module)."""
    n = len(embeddings)
    unit = F.normalize(embeddings.double(), dim=-1)
    half = n // 2
    lists = torch.full((n, 3, count), -1, dtype=torch.long)
    for start in range(0, n, chunk):
        anchors = torch.arange(start, min(start + chunk, n))
        similarity = unit[anchors] @ unit.T
        similarity[torch.arange(len(anchors)), anchors] = float("nan")  # the anchor itself: last in both orders
        ranked = torch.sort(torch.nan_to_num(similarity, nan=-torch.inf), dim=1, descending=True, stable=True).indices
        similar_half = ranked[:, :half]
        least = torch.sort(torch.nan_to_num(similarity, nan=torch.inf), dim=1, stable=True).indices[:, : n - half]
        own = classes[anchors][:, None]
        same, other = classes[similar_half] == own, classes[least] != own
        lists[anchors, 0] = first(similar_half, same & (similar_half != anchors[:, None]), count)
        lists[anchors, 1] = first(least, other, count)
        lists[anchors, 2] = first(similar_half, ~same, count)
    return lists


def draw(lists: torch.Tensor, rows: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """[B, 6] neighbours of the given anchors: two distinct of each list (ss, ss, dd, dd, sd, sd)."""
    chosen = []
    for which in range(3):
        options = lists[rows, which]  # [B, K]
        valid = options >= 0
        keys = torch.rand(options.shape, generator=generator).masked_fill(~valid, 2.0)
        picks = options.gather(1, keys.argsort(dim=1)[:, :2])
        single = valid.sum(1) == 1
        picks[single, 1] = picks[single, 0]
        empty = valid.sum(1) == 0
        picks[empty] = torch.randint(size, (int(empty.sum()), 2), generator=generator)
        chosen.append(picks)
    return torch.cat(chosen, dim=1)


def contrast(features: torch.Tensor, labels: torch.Tensor, temperature: float, label_weighted: bool) -> torch.Tensor:
    """ConFEDE's NT-Xent for each anchor's 42 vectors [B, 42, D] with per-row labels [B, 42], mean over anchors."""
    unit = F.normalize(features, dim=-1)
    similarity = unit @ unit.transpose(1, 2)  # [B, 42, 42]
    negatives = INTER_NEGATIVES + INTRA_NEGATIVES
    a_neg = torch.tensor([a for a, _ in negatives], device=features.device)
    n_neg = torch.tensor([n for _, n in negatives], device=features.device)
    weights = torch.ones(features.shape[0], len(negatives), device=features.device, dtype=features.dtype)
    if label_weighted:
        inter = len(INTER_NEGATIVES)
        weights[:, :inter] = (labels[:, a_neg[:inter]] - labels[:, n_neg[:inter]]).abs() / 2
    negative = similarity[:, a_neg, n_neg] * weights / temperature  # [B, 33]
    a_pos = torch.tensor([a for a, _ in POSITIVES], device=features.device)
    p_pos = torch.tensor([p for _, p in POSITIVES], device=features.device)
    positive = similarity[:, a_pos, p_pos] / temperature  # [B, 20]
    same_anchor = a_pos[:, None] == a_neg[None, :]  # [20, 33]: the negatives of each positive pair's anchor
    masked = negative[:, None, :].masked_fill(~same_anchor, -torch.inf)  # [B, 20, 33]
    denominator = torch.logsumexp(torch.cat([positive[..., None], masked], dim=-1), dim=-1)
    return (denominator - positive).mean()


class ConFEDE(Objective):
    """ConFEDE's objective: L_reg + 0.1 L_CL + 0.01 L_Uni over the batch and its retrieved neighbours (module doc)."""

    name = "confede"
    needs = ("prediction", "unimodal", "similar", "dissimilar")
    tasks = ("regression",)

    def __init__(
        self,
        task,
        temperature: float = 0.5,
        weight_cl: float = 0.1,
        weight_uni: float = 0.01,
        label_weighted: bool = True,
        refresh_every: int = 10,
        candidates: int = 10,
    ):
        super().__init__(task)
        if refresh_every < 1 or candidates < 2:
            raise ValueError("objective 'confede': refresh_every must be >= 1 and candidates >= 2")
        self.temperature, self.weight_cl, self.weight_uni = temperature, weight_cl, weight_uni
        self.label_weighted, self.refresh_every, self.candidates = label_weighted, refresh_every, candidates
        self.run = None  # the run whose train split and model supply the neighbours (set in on_fit_start)
        self.generator = torch.Generator()
        self.register_buffer("neighbours", torch.full((0, 3, candidates), -1, dtype=torch.long))

    def on_fit_start(self, run) -> None:
        self.run = run
        self.generator.manual_seed(run.seed)
        size = len(run.data.splits["train"])
        self.neighbours = torch.full((size, 3, self.candidates), -1, dtype=torch.long, device=self.neighbours.device)

    def on_epoch_start(self, run, epoch) -> None:
        if (epoch - 1) % self.refresh_every == 0:
            self.refresh(run)

    @torch.no_grad()
    def refresh(self, run) -> None:
        """Rank the train samples by the similarity of the encoders' current outputs; keep each one's lists."""
        model, split = run.model, run.data.splits["train"]
        was_training = model.training
        model.eval()
        parts = []
        for batch in split.batches(run.settings["eval_batch_size"]):
            batch = batch.to(run.device)
            encoded = [
                encoder(batch[model.inputs[modality]], batch.get(f"{modality}_lengths"))
                for modality, encoder in model.encoders.items()
            ]
            parts.append(torch.cat([vector.reshape(len(vector), -1) for vector in encoded], dim=-1).cpu())
        model.train(was_training)
        classes = label_classes(split.tensors["label"], self.task.family)
        self.neighbours = neighbour_lists(torch.cat(parts), classes, self.candidates).to(self.neighbours.device)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())

    def neighbour_batch(self, batch: Batch) -> Batch:
        split = self.run.data.splits["train"]
        picked = draw(self.neighbours.cpu(), batch["index"].cpu(), len(split), self.generator).reshape(-1)
        return Batch({key: value[picked] for key, value in split.tensors.items()}, index=picked).to(self.run.device)

    def forward(self, outputs, batch):
        y = batch["label"].reshape(-1)
        prediction, unimodal = outputs["prediction"].reshape(-1), outputs["unimodal"]
        targets = unimodal_targets(batch, unimodal)
        neighbours = self.training and self.run is not None and len(self.neighbours) > 0
        if not neighbours:
            losses = {"msr": F.mse_loss(prediction, y), "uni": F.mse_loss(unimodal, targets)}
            cl = prediction.new_zeros(())
        else:
            others = self.neighbour_batch(batch)
            out = self.run.model(others)
            y2 = others["label"].reshape(-1)
            losses = {
                "msr": F.mse_loss(torch.cat([prediction, out["prediction"].reshape(-1)]), torch.cat([y, y2])),
                "uni": F.mse_loss(
                    torch.cat([unimodal, out["unimodal"]]),
                    torch.cat([targets, unimodal_targets(others, out["unimodal"])]),
                ),
            }
            size = len(y)
            vectors = []
            for part, index in KINDS:
                anchor = outputs[part][:, index][:, None]  # [B, 1, D]
                around = out[part][:, index].reshape(size, SAMPLES - 1, -1)  # [B, 6, D]
                vectors.append(torch.cat([anchor, around], dim=1))
            labels = torch.cat([y[:, None], y2.reshape(size, SAMPLES - 1)], dim=1).repeat(1, len(KINDS))
            cl = contrast(torch.cat(vectors, dim=1), labels.to(prediction.dtype), self.temperature, self.label_weighted)
        total = losses["msr"] + self.weight_cl * cl + self.weight_uni * losses["uni"]
        return {"total": total, **losses, "cl": cl}
