"""The reference rows every real leaderboard carries, run under the same trainer and protocol as every method:

- ``majority``: the same prediction for every test sample, the train split's majority class (classification) or
  median label (regression: its sign is the majority sign and it minimises the MAE), fitted in closed form from
  the train labels (`Majority`). Its text encoder reads nothing useful: the time average of the text features,
  or on tweet + image data nothing at all (`ignore-text`).
- ``linear``: one linear layer on the concatenated, standardised time averages (`mean-pool`) of the text, audio
  and vision features: ridge regression (squared error, weight decay on the weights) or L2-penalised logistic
  regression, trained by Adam under the protocol (selected on the validation loss, tested once).
- ``linear-image-text``: the same on tweet + image data, on frozen pretrained features: `hf-text` (mean-pooled,
  ``--set text.pretrained=...``, default bert-base-uncased) and `efficientnet-lite0` (ImageNet weights).

A method that beats neither row has learned nothing its inputs' averages do not already hold.
"""

from msabench import Method, hookimpl

from .components import IgnoreText, Linear, Majority, MeanPool, SquaredOrCrossEntropy, constant

PAPER = "msabench reference row"
TASKS = ("regression", "classification", "multilabel")
IMAGE_TEXT = ("mvsa-single", "mvsa-multiple", "synthetic-imagetext")  # by name or hparams_from (lab5: mvsa-single)
# Ridge / logistic regression's penalty on the weights only; the intercept is not penalised.
LINEAR_TRAIN = {
    "optimizer": "adam",
    "lr": 1e-2,
    "weight_decay": 1e-3,
    "batch_size": 64,
    "lr_groups": {"fusion.linear.bias": {"weight_decay": 0.0}},
}

METHODS = [
    Method(
        name="majority",
        paper=f"{PAPER}: the train split's majority class, or its median label",
        encoders={"text": "mean-pool"},
        fusion="majority",
        objective="l1-ce",
        hparams={"train": {"batch_size": 256}},
        tasks=TASKS,
        dataset_encoders={name: {"text": "ignore-text"} for name in IMAGE_TEXT},
    ),
    Method(
        name="linear",
        paper=f"{PAPER}: ridge / logistic regression on the concatenated time-averaged features",
        encoders={"text": "mean-pool", "audio": "mean-pool", "vision": "mean-pool"},
        fusion="linear",
        objective="mse-ce",
        hparams={"train": LINEAR_TRAIN},
        tasks=TASKS,
    ),
    Method(
        name="linear-image-text",
        paper=f"{PAPER}: logistic regression on frozen pretrained text and image features",
        encoders={"text": "hf-text", "image": "efficientnet-lite0"},
        fusion="linear",
        objective="mse-ce",
        hparams={"train": LINEAR_TRAIN, "text": {"pooling": "mean", "freeze": True}, "image": {"freeze": True}},
        tasks=("classification",),
    ),
]


@hookimpl
def register_encoders(register):
    register(MeanPool)
    register(IgnoreText)


@hookimpl
def register_fusions(register):
    register(Majority)
    register(Linear)


@hookimpl
def register_objectives(register):
    register(SquaredOrCrossEntropy)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)


__all__ = ["METHODS", "IgnoreText", "Linear", "Majority", "MeanPool", "SquaredOrCrossEntropy", "constant"]
