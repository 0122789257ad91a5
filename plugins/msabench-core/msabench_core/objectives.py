"""Objectives most methods share: L1 (MMSA's regression loss), MSE, cross-entropy, and L1 or cross-entropy by task."""

from torch import nn

from msabench import Objective


class L1(Objective):
    """Mean absolute error between the prediction and the multimodal label (MMSA's regression loss)."""

    name = "l1"

    def forward(self, outputs, batch):
        return {"total": nn.functional.l1_loss(outputs["prediction"].reshape(-1), batch["label"])}


class MSE(Objective):
    """Mean squared error between the prediction and the multimodal label."""

    name = "mse"

    def forward(self, outputs, batch):
        return {"total": nn.functional.mse_loss(outputs["prediction"].reshape(-1), batch["label"])}


class CrossEntropy(Objective):
    """Cross-entropy of class logits against class ids, with optional label smoothing; for multilabel tasks
    (IEMOCAP's emotions), the mean over every entry of the two-way cross-entropy of its pair of logits."""

    name = "cross-entropy"
    tasks = ("classification", "multilabel")

    def __init__(self, task, label_smoothing: float = 0.0):
        super().__init__(task)
        self.label_smoothing = label_smoothing

    def forward(self, outputs, batch):
        logits, labels = outputs["prediction"], batch["label"]
        if self.task.kind == "multilabel":
            logits, labels = logits.reshape(-1, 2), labels.reshape(-1)
        return {"total": nn.functional.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)}


class L1OrCrossEntropy(Objective):
    """L1 for regression tasks, cross-entropy for classification and multilabel tasks (per entry, as
    `cross-entropy`): the criterion MMSA and MulT use for every method that runs on both kinds of data."""

    name = "l1-ce"
    tasks = ("regression", "classification", "multilabel")

    def __init__(self, task):
        super().__init__(task)
        self.cross_entropy = CrossEntropy(task) if task.kind != "regression" else None

    def forward(self, outputs, batch):
        if self.cross_entropy is None:
            return {"total": nn.functional.l1_loss(outputs["prediction"].reshape(-1), batch["label"])}
        return self.cross_entropy(outputs, batch)
