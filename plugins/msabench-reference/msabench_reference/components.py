"""The reference rows' components: two parameter-free encoders, the majority and linear fusions, and an objective
that is least squares for regression and cross-entropy for classes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from msabench import Callback, Encoder, Fusion, Objective, Task
from msabench.layers import masked_mean


class MeanPool(Encoder):
    """A feature sequence's mean over its real frames, ``[B, L, D]`` -> ``[B, D]``; no parameters."""

    name = "mean-pool"
    consumes = "features"
    returns = "vector"

    def __init__(self, spec):
        super().__init__(spec)
        self.out_dim = spec.dim

    def forward(self, x, lengths):
        return masked_mean(x, lengths)


class IgnoreText(Encoder):
    """Reads ``raw_text`` and keeps nothing of it (``[B, 0]``): for a fusion that uses no input (`majority`) on data
    whose only inputs are raw (tweets and images)."""

    name = "ignore-text"
    consumes = "raw_text"
    returns = "vector"

    def __init__(self, spec):
        super().__init__(spec)
        self.out_dim = 0

    def preprocess(self, values):
        return torch.zeros(len(values), 0)

    def forward(self, x, lengths):
        return x


def constant(task: Task, labels: torch.Tensor) -> torch.Tensor:
    """The train labels' best constant, ``[task.out_dim]``: their median for regression (its sign is the majority
    sign, and it minimises the mean absolute error); for classes, the log of each class's frequency with one added
    to every count (so the argmax is the majority class, the lowest id on a tie, and no class has probability 0);
    for multilabel tasks, that per entry (absent, present)."""
    values = labels.detach().cpu().numpy()
    if task.kind == "regression":
        return torch.tensor([float(np.median(values))])
    if task.kind == "multilabel":
        present = values.reshape(len(values), -1).sum(0)
        counts = np.stack([len(values) - present, present], axis=1).reshape(-1)
        return torch.from_numpy(np.log((counts + 1) / (len(values) + 2))).float()
    counts = np.bincount(values.astype(np.int64), minlength=len(task.classes))
    return torch.from_numpy(np.log((counts + 1) / (len(values) + len(task.classes)))).float()


class Majority(Fusion, Callback):
    """The same prediction for every sample: the train split's best constant (`constant`: the median label, or the
    majority class as log class frequencies), fitted in closed form from the train labels when the run starts.

    It is a parameter so that the trainer's loop runs as it does for every row (epochs, the validation loss for
    selection, one test evaluation, the result file), but no step changes it: its gradient is dropped after every
    backward. The validation loss is the same every epoch, so epoch 1 is selected."""

    name = "majority"

    def __init__(self, in_dims, task):
        super().__init__(in_dims, task)
        self.task = task
        self.value = nn.Parameter(torch.zeros(task.out_dim))

    def forward(self, features, lengths):
        size = next(iter(features.values())).shape[0]
        return {"prediction": self.value.expand(size, -1)}

    def on_fit_start(self, run):
        with torch.no_grad():
            self.value.copy_(constant(self.task, run.data.splits["train"].tensors["label"]).to(self.value.device))

    def on_after_backward(self, run, batch):
        self.value.grad = None


class Linear(Fusion, Callback):
    """One linear layer on the concatenated modality features, each feature standardised with the train split's
    mean and standard deviation (computed through the encoders when the run starts; buffers, so checkpoints and
    resumed runs keep them). It starts from the intercept-only model (weights 0; bias the train labels' mean, or the
    log class frequencies). With the squared error and an L2 penalty on the weights (weight decay) it is ridge
    regression; with cross-entropy, L2-penalised logistic regression."""

    name = "linear"

    def __init__(self, in_dims, task, standardize: bool = True):
        super().__init__(in_dims, task)
        self.task = task
        self.order = list(in_dims)
        width = sum(in_dims.values())
        self.standardize = standardize
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.linear = nn.Linear(width, task.out_dim)

    def forward(self, features, lengths):
        x = torch.cat([features[m] for m in self.order], dim=-1)
        return {"prediction": self.linear((x - self.mean) / self.scale)}

    def on_fit_start(self, run):
        train = run.data.splits["train"]
        with torch.no_grad():
            if self.standardize:
                x = train_features(run, self.order)
                std = x.std(0, unbiased=False)
                self.mean.copy_(x.mean(0))
                self.scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))
            self.linear.weight.zero_()
            labels = train.tensors["label"]
            if self.task.kind == "regression":
                self.linear.bias.fill_(float(labels.float().mean()))
            else:
                self.linear.bias.copy_(constant(self.task, labels).to(self.linear.bias.device))


def train_features(run, order: list[str]) -> torch.Tensor:
    """The encoders' outputs for the whole train split, concatenated in `order` (eval mode, no gradients)."""
    model, chunks = run.model, []
    training = model.training
    model.eval()
    for batch in run.data.splits["train"].batches(512):
        batch = batch.to(run.device)
        parts = [model.encoders[m](batch[model.inputs[m]], batch.get(f"{m}_lengths")) for m in order]
        chunks.append(torch.cat(parts, dim=-1).float())
    model.train(training)
    return torch.cat(chunks)


class SquaredOrCrossEntropy(Objective):
    """The mean squared error for regression tasks (least squares: with weight decay, ridge), cross-entropy for
    classification and per entry for multilabel tasks (logistic regression)."""

    name = "mse-ce"
    tasks = ("regression", "classification", "multilabel")

    def forward(self, outputs, batch):
        prediction, labels = outputs["prediction"], batch["label"]
        if self.task.kind == "regression":
            return {"total": nn.functional.mse_loss(prediction.reshape(-1), labels)}
        if self.task.kind == "multilabel":
            prediction, labels = prediction.reshape(-1, 2), labels.reshape(-1)
        return {"total": nn.functional.cross_entropy(prediction, labels)}
