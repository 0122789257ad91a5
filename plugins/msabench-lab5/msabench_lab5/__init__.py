"""The models of a course report on the Lab5 image-text data: BERT and ResNet-50 alone, their
concatenation, and a cross-modal attention head.

**Two stages, as the report trains them, each an ordinary msabench run under the protocol:**

1. Unimodal fine-tuning: ``lab5-bert`` (BERT [CLS] -> Linear, AdamW 2e-5) and ``lab5-resnet50``
   (ResNet-50 pooled features -> Linear, Adam 1e-3, 5 epochs). Each selects its epoch on the
   validation split and saves its weights beside its result
   (``<results>/<dataset>/<method>/<protocol>/seed-<n>.pt``).
2. Fusion on the frozen fine-tuned encoders: ``lab5-concat`` and ``lab5-cma`` start their text and
   image encoders from the stage-1 checkpoint **of the same seed and dataset**
   (``init_from: {results}/{dataset}/lab5-bert/{protocol}/seed-{seed}.pt``; msabench fills in the braces
   with the run's results folder, dataset, protocol id and seed, so ``--results`` and ``--max-epochs`` carry
   over to both stages), freeze them, and train the head with AdamW 2e-5, weight decay 1e-5. Frozen encoders run once
   per split and their features are cached.

So a five-seed stage-2 row is five full two-stage pipelines, and both stages only ever look at
train (fitting) and valid (selection): the test split is touched once per run. msabench checks
this: every checkpoint records the SHA-256 of each split's ids and how the split was made, and
stage 2 refuses a stage-1 checkpoint whose train or valid samples are not its own (made with
another ``--data-option split_seed``, split file or data folder), since that encoder may have been
fitted on stage 2's test samples. Run stage 1 first, with the same data and options:

    msabench run --method lab5-bert --dataset lab5 --data-root DIR
    msabench run --method lab5-resnet50 --dataset lab5 --data-root DIR
    msabench run --method lab5-concat --dataset lab5 --data-root DIR

With stage-1 runs that changed hyper-parameters (their folder is then ``lab5-bert+<changes>``),
point at them: ``--set text.init_from=PATH/seed-{seed}.pt``; with
``--set text.init_from=null`` stage 2 starts from the pretrained weights (a different recipe,
recorded as a variant). The result records each start checkpoint's absolute path, SHA-256 and
splits; ``msabench predict`` finds it there, from any working folder.

The report's numbers are accuracies on its own 500-sample validation split of the full Lab5 data,
not on a test split: they are shown beside ours as a rough reference only. Epochs and batch sizes
that the report does not give follow the protocol (cap 100, patience 8) and batch 32.
"""

from msabench import Method, Reported, hookimpl

from .data import Lab5
from .fusions import ConcatLinear, CrossModalAttention

PAPER = "Lab5 course report (BERT + ResNet-50 on tweet text-image pairs)"
REPORT = "course report, accuracy on its own 500-sample validation split"
STAGE2 = {"optimizer": "adamw", "lr": 2e-5, "weight_decay": 1e-5, "batch_size": 32}
TEXT = {"pretrained": "bert-base-uncased", "pooling": "cls"}
IMAGE = {"pretrained": "microsoft/resnet-50"}
FROZEN_TEXT = {**TEXT, "freeze": True, "init_from": "{results}/{dataset}/lab5-bert/{protocol}/seed-{seed}.pt"}
FROZEN_IMAGE = {**IMAGE, "freeze": True, "init_from": "{results}/{dataset}/lab5-resnet50/{protocol}/seed-{seed}.pt"}


def lab5(name, encoders, fusion, hparams, accuracy, note):
    return Method(
        name=name,
        paper=f"{PAPER}: {note}",
        encoders=encoders,
        fusion=fusion,
        objective="cross-entropy",
        hparams=hparams,
        reported=(Reported("lab5", REPORT, {"Acc": accuracy}),),
        tasks=("classification",),
    )


METHODS = [
    lab5(
        "lab5-bert",
        {"text": "hf-text"},
        "concat-linear",
        {"train": {"optimizer": "adamw", "lr": 2e-5, "batch_size": 32}, "text": TEXT},
        74.8,
        "text only, fine-tuned (stage 1)",
    ),
    lab5(
        "lab5-resnet50",
        {"image": "resnet50-image"},
        "concat-linear",
        {"train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "max_epochs": 5}, "image": IMAGE},
        60.2,
        "image only, fine-tuned (stage 1)",
    ),
    lab5(
        "lab5-concat",
        {"text": "hf-text", "image": "resnet50-image"},
        "concat-linear",
        {"train": STAGE2, "text": FROZEN_TEXT, "image": FROZEN_IMAGE},
        82.4,
        "concatenation of the frozen fine-tuned features (stage 2)",
    ),
    lab5(
        "lab5-cma",
        {"text": "hf-text", "image": "resnet50-image"},
        "cross-modal-attention",
        {"train": STAGE2, "text": FROZEN_TEXT, "image": FROZEN_IMAGE, "fusion": {"hidden": 512, "dropout": 0.1}},
        64.6,
        "cross-modal attention on the frozen fine-tuned features (stage 2)",
    ),
]


@hookimpl
def register_datasets(register):
    register(Lab5)


@hookimpl
def register_fusions(register):
    register(ConcatLinear)
    register(CrossModalAttention)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)
