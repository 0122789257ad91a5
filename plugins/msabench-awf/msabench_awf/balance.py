"""B-fusion (balanced fusion): one weight per modality, learned from how strongly the task loss pulls on each
modality's last linear layer.

Per training batch, with W_i the last linear layer of modality i's encoder and L the task loss:

    g_i = mean |dL/dW_i|                     (mean over W_i's entries; the gradient keeps its graph)
    g_bar = mean_i g_i,  r_i = max_k g_k / g_i,  target_i = g_bar * r_i   (held constant)
    L_omega = sum_i |g_i - target_i|
    omega_i <- max(omega_i - eta * dL_omega/domega_i, floor)   (plain SGD, once per batch)

L_omega depends on omega only through the gradients (omega_i scales Z_i = W_i^T h_i, so the gradient on W_i
scales with it): g_i is taken with ``create_graph=True`` before the trainer's backward (`on_before_backward`),
and the step on omega is applied after it (`on_after_backward`). omega is kept out of the trainer's optimizer
(`manual_parameters`) and the task loss's gradient on it is discarded: omega moves by dL_omega only, every other
parameter by the task loss only (L_omega's gradient is taken with respect to omega alone).

The paper gives no eta and no bound or normalisation of omega. We keep its update as written and add one
bound, a floor at 0 (``floor=None`` removes it): a negative weight would flip a modality's features instead of
weighing them, and with a large eta the strongest modality's weight does cross 0 (measured on synthetic-mosi
with eta = 100). No normalisation (GradNorm rescales its weights to sum to their count; B-fusion as published
does not).
"""

from __future__ import annotations

import torch
from torch import nn

from msabench import Callback, TrainingError

SHORT = {"text": "T", "audio": "A", "vision": "V"}  # the paper's subscripts, used in the logged names
EPS = 1e-12  # floor of g_i in r_i = max g / g_i (a modality with no gradient at all would divide by zero)


def last_linear(module: nn.Module) -> nn.Linear | None:
    """The last `nn.Linear` of a module, in registration order (an encoder's output layer)."""
    found = [child for child in module.modules() if isinstance(child, nn.Linear)]
    return found[-1] if found else None


class Balancer(nn.Module, Callback):
    """B-fusion's modality weights omega (all 1 at the start) and their own SGD step of rate `lr` (eta), bounded
    below by `floor`.

    `forward` scales each modality's features by its weight. The layers W_i whose gradients are measured are
    given to `bind`; modalities left unbound are bound in `on_fit_start` to the last linear layer of their
    encoder. Logs ``omega_T``, ``omega_A``, ``omega_V`` in each epoch's history and ``balance`` (L_omega, the
    batch mean) among the training losses."""

    def __init__(self, modalities, lr: float, floor: float | None = 0.0):
        super().__init__()
        if not lr > 0:
            raise ValueError(f"B-fusion's omega_lr must be > 0; got {lr}")
        self.modalities = list(modalities)
        self.lr, self.floor = lr, floor
        self.omega = nn.Parameter(torch.ones(len(self.modalities)))
        self.weights: dict[str, nn.Parameter] = {}  # modality -> W_i (not registered: it belongs to its module)
        self.where: dict[str, str] = {}  # modality -> where W_i is, for messages
        self.pending: torch.Tensor | None = None  # dL_omega/domega of the current batch
        self.frozen = False  # `freeze`: omega keeps its values and nothing is measured

    def freeze(self) -> None:
        """Keep omega as it is: no gradient is measured and no step taken (its modalities' layers are frozen)."""
        self.frozen = True
        self.omega.requires_grad_(False)

    def bind(self, modality: str, weight: nn.Parameter, where: str) -> None:
        self.weights[modality], self.where[modality] = weight, where

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.omega[i] * features[m] for i, m in enumerate(self.modalities)}

    def manual_parameters(self) -> list[nn.Parameter]:
        return [self.omega]

    def statistics(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(g, target, L_omega) for a task loss whose graph is still alive; g and L_omega keep their graphs."""
        missing = [m for m in self.modalities if m not in self.weights]
        if missing:
            raise TrainingError(f"B-fusion has no linear layer to measure for {', '.join(missing)}.")
        weights = [self.weights[m] for m in self.modalities]
        grads = torch.autograd.grad(loss, weights, create_graph=True, retain_graph=True, allow_unused=True)
        if unused := [m for m, grad in zip(self.modalities, grads, strict=True) if grad is None]:
            raise TrainingError(
                f"B-fusion: the task loss does not reach {', '.join(self.where[m] for m in unused)}, the last linear "
                f"layer of the {', '.join(unused)} encoder; give the fusion a projection for it "
                f"(--set fusion.project='{{\"{unused[0]}\": 128}}')."
            )
        g = torch.stack([grad.abs().mean() for grad in grads])
        target = (g.mean() * g.max() / g.clamp_min(EPS)).detach()
        return g, target, (g - target).abs().sum()

    def on_fit_start(self, run) -> None:
        if self.frozen:
            return
        for modality in self.modalities:
            if modality in self.weights:
                continue
            layer = last_linear(run.model.encoders[modality])
            if layer is None:
                raise TrainingError(
                    f"B-fusion needs a linear output layer in the {modality} encoder "
                    f"({run.method.encoders[modality]}), and it has none; give it one (lstm-seq: --set "
                    f"{modality}.out=N) or give the fusion a projection (--set fusion.project='{{\"{modality}\": N}}')."
                )
            name = next(n for n, p in run.model.encoders[modality].named_parameters() if p is layer.weight)
            self.bind(modality, layer.weight, f"encoders.{modality}.{name}")

    def on_before_backward(self, run, batch, losses) -> None:
        if self.frozen:
            return
        _, _, balance = self.statistics(losses["total"])
        (self.pending,) = torch.autograd.grad(balance, self.omega, retain_graph=True)  # the task backward follows
        losses["balance"] = balance.detach()

    def on_after_backward(self, run, batch) -> None:
        if self.pending is not None:
            with torch.no_grad():
                self.omega.sub_(self.lr * self.pending)
                if self.floor is not None:
                    self.omega.clamp_(min=self.floor)
        self.omega.grad = None  # what the task loss put there: omega follows dL_omega alone
        self.pending = None

    def on_epoch_end(self, run, epoch, logs) -> None:
        for i, modality in enumerate(self.modalities):
            logs[f"omega_{SHORT.get(modality, modality)}"] = float(self.omega[i].detach())
