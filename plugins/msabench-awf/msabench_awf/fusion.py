"""The adaptive weight fusion (`awf`: B-fusion + A-fusion) and B-fusion as an add-on to any late fusion
(`b-fusion`, which wraps a registered fusion by name)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from msabench import Callback, CatalogError, Fusion, TrainingError, lookup

from .balance import SHORT, Balancer

log = logging.getLogger("msabench")

MODALITIES = ("text", "audio", "vision")
OMEGA_LR = 10.0  # eta, B-fusion's SGD rate (the paper gives none; see the README for how it was chosen)


class ModalAttention(nn.Module):
    """A-fusion's weights: alpha = sigmoid(ReLU(avgpool[Z_T, Z_A, Z_V] W1) W2), one per modality.

    avgpool averages each modality's vector over its features ([B, 3, d] -> [B, 3]); W1 and W2 are 3x3 matrices
    without bias. The paper writes W_ATT for both: we read them as two matrices (``shared=False``, a
    squeeze-and-excitation block); ``shared=True`` uses one matrix twice, the other reading."""

    def __init__(self, count: int, shared: bool = False):
        super().__init__()
        self.first = nn.Linear(count, count, bias=False)
        self.second = self.first if shared else nn.Linear(count, count, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, M, d] -> alpha [B, M]."""
        return torch.sigmoid(self.second(torch.relu(self.first(z.mean(-1)))))


def head(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class AdaptiveWeightFusion(Fusion, Callback):
    """AWF (Luo et al., 2024): Z_i = W_i^T h_i for each modality's encoder output h_i (W_i: this fusion's
    projections, the last linear layer of each encoder in the paper's equations), Z_GB = [w_T Z_T, w_A Z_A, w_V Z_V]
    with B-fusion's weights (`Balancer`), Z_ATT = [a_T Z_T, a_A Z_A, a_V Z_V] with A-fusion's (`ModalAttention`),
    Z = (Z_GB + Z_ATT) / 2, then dropout, a ReLU layer of ``post_fusion_dim`` and the output layer.

    A-fusion reads and weighs detached copies of the Z_i: it passes no gradient into the unimodal networks (the
    paper: it "has no effect on the unimodal learning rate"), so their gradients, and B-fusion's g_i, come from
    Z_GB alone. ``balance=False`` keeps every w at 1 (Table 7's rows without GB); ``attention=False`` removes
    A-fusion: Z = Z_GB (Table 9). ``observe=True`` is Table 10's experiment (`observe`). Logs each epoch's mean
    alpha over the training batches (``alpha_T``...) and its ratios (``ratio_T``... = alpha_i / sum alpha) beside
    B-fusion's omega."""

    name = "awf"
    modalities = MODALITIES
    tiny = {"dim": 4, "post_fusion_dim": 8}

    def __init__(
        self,
        in_dims,
        task,
        dim: int = 128,
        post_fusion_dim: int = 128,
        dropout: float = 0.0,
        balance: bool = True,
        omega_lr: float = OMEGA_LR,
        omega_floor: float | None = 0.0,
        shared_attention: bool = False,
        attention: bool = True,
        observe: bool = False,
    ):
        super().__init__(in_dims, task)
        if observe and not attention:
            raise CatalogError("fusion 'awf': observe=true trains A-fusion alone, so it needs attention=true.")
        self.project = nn.ModuleDict({m: nn.Linear(in_dims[m], dim) for m in MODALITIES})
        self.balancer = Balancer(MODALITIES, omega_lr, omega_floor) if balance else None
        if self.balancer is not None:
            for m in MODALITIES:
                self.balancer.bind(m, self.project[m].weight, f"fusion.project.{m}.weight")
        self.attention = ModalAttention(len(MODALITIES), shared_attention) if attention else None
        self.head = head(len(MODALITIES) * dim, post_fusion_dim, task.out_dim, dropout)
        self.observe = observe
        self.alpha_sum, self.alpha_count = torch.zeros(len(MODALITIES)), 0

    def forward(self, features, lengths):
        z = {m: self.project[m](features[m]) for m in MODALITIES}
        weighted = self.balancer(z) if self.balancer is not None else z
        balanced = torch.cat([weighted[m] for m in MODALITIES], dim=-1)
        if self.attention is None:
            return {"prediction": self.head(balanced)}  # Table 9 without A-fusion: Z = Z_GB
        detached = torch.stack([z[m].detach() for m in MODALITIES], dim=1)  # [B, M, d], no gradient into Z_i
        alpha = self.attention(detached)
        attended = (alpha.unsqueeze(-1) * detached).flatten(1)  # [a_T Z_T, a_A Z_A, a_V Z_V]
        if self.training:
            self.alpha_sum = self.alpha_sum + alpha.detach().sum(0).cpu()
            self.alpha_count += len(alpha)
        return {"prediction": self.head((balanced + attended) / 2)}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.observe:  # the frozen head keeps its dropout off while A-fusion alone learns
            self.head.eval()
        return self

    def on_fit_start(self, run):
        if self.observe:
            observe(self, run)

    def on_epoch_start(self, run, epoch):
        self.alpha_sum, self.alpha_count = torch.zeros(len(MODALITIES)), 0

    def on_epoch_end(self, run, epoch, logs):
        if self.alpha_count:
            alpha = self.alpha_sum / self.alpha_count
            for i, m in enumerate(MODALITIES):
                logs[f"alpha_{SHORT[m]}"] = float(alpha[i])
            for i, m in enumerate(MODALITIES):
                logs[f"ratio_{SHORT[m]}"] = float(alpha[i] / alpha.sum())


def observe(fusion: AdaptiveWeightFusion, run) -> None:
    """Table 10's experiment: start every part of the model but A-fusion from a trained AWF and freeze it, so that
    A-fusion alone learns (from its own initialisation) and its ratios show what it settles on for that network.

    The trained AWF is the checkpoint the text encoder was started from (the method's stage, ``awf`` with the same
    seed, data and protocol; or ``--set text.init_from=PATH``): its audio and vision encoders, W_i, B-fusion's omega
    and head are loaded here; B-fusion takes no further step. Without such a checkpoint (``text.init_from=null``)
    A-fusion is observed on the network as built, and a warning says so."""
    started = getattr(run.model.encoders["text"], "started_from", None)
    if started is None:
        log.warning(
            "%s: the text encoder starts from no trained AWF (text.init_from is not set): A-fusion is observed on the "
            "network as built, not on a trained one",
            run.method.name,
        )
    else:
        state = torch.load(started["path"], map_location="cpu", weights_only=True)["model"]
        for modality in ("audio", "vision"):
            prefix = f"encoders.{modality}."
            own = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            load(run.model.encoders[modality], own, started["path"], f"the {modality} encoder")
        own = {
            key[len("fusion.") :]: value
            for key, value in state.items()
            if key.startswith("fusion.") and not key.startswith("fusion.attention.")
        }
        attention = {f"attention.{key}": value for key, value in fusion.attention.state_dict().items()}
        load(fusion, {**own, **attention}, started["path"], "the fusion")
    for parameter in run.model.parameters():
        parameter.requires_grad_(False)
    for parameter in fusion.attention.parameters():
        parameter.requires_grad_(True)
    if fusion.balancer is not None:
        fusion.balancer.freeze()
    fusion.train(fusion.training)


def load(module: nn.Module, state: dict, path: str, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise TrainingError(
            f"awf: {path} does not hold weights that fit {what} (is it an awf checkpoint of the same recipe?): "
            f"{str(error).splitlines()[0]}"
        ) from None


class BalancedFusion(Fusion):
    """B-fusion as an add-on to another late fusion: every modality's vector is scaled by its B-fusion weight
    (`Balancer`), then fused by the registered fusion named ``fusion`` (built with the remaining
    hyper-parameters), e.g. LF-DNN's ``late-concat``.

    W_i, whose gradient B-fusion measures, is the last linear layer of modality i's encoder; for an encoder
    without one (BERT's [CLS] vector, an LSTM's state), ``project`` gives this fusion a linear layer per modality
    (``{"text": 256}``), applied before the weights. ``balance=False`` keeps every weight at 1: the same model
    without B-fusion, for before/after comparisons."""

    name = "b-fusion"
    produces = ("prediction",)
    tiny = {"fusion": "late-concat", "post_fusion_dim": 8}

    def __init__(
        self,
        in_dims,
        task,
        fusion: str = "late-concat",
        project: dict[str, int] | None = None,
        balance: bool = True,
        omega_lr: float = OMEGA_LR,
        omega_floor: float | None = 0.0,
        **hparams,
    ):
        super().__init__(in_dims, task)
        project = dict(project or {})
        if unknown := sorted(set(project) - set(in_dims)):
            raise ValueError(f"project names {unknown}, which the method does not encode ({', '.join(in_dims)})")
        inner = inner_fusion(fusion)
        self.project = nn.ModuleDict({m: nn.Linear(in_dims[m], width) for m, width in project.items()})
        widths = {m: project.get(m, dim) for m, dim in in_dims.items()}
        self.fusion = inner(widths, task, **hparams)
        self.balancer = Balancer(list(in_dims), omega_lr, omega_floor) if balance else None
        if self.balancer is not None:
            for m, layer in self.project.items():
                self.balancer.bind(m, layer.weight, f"fusion.project.{m}.weight")

    def forward(self, features, lengths):
        features = {m: self.project[m](x) if m in self.project else x for m, x in features.items()}
        if self.balancer is not None:
            features = self.balancer(features)
        return self.fusion(features, lengths)


def inner_fusion(name: str) -> type[Fusion]:
    """The installed fusion `b-fusion` wraps: one that fuses one vector per modality, not B-fusion itself."""
    cls = lookup("fusions", name)
    if issubclass(cls, (BalancedFusion, AdaptiveWeightFusion)):
        raise CatalogError(f"b-fusion cannot wrap {name!r}, which balances its inputs itself; name a plain fusion.")
    if cls.accepts != "vector":
        raise CatalogError(
            f"b-fusion wraps late fusions of one vector per modality; {name!r} takes {cls.accepts}s. Name another."
        )
    return cls
