"""The models of a course report on the Lab5 image-text data: BERT and ResNet-50 alone, their
concatenation, and a cross-modal attention head, plus the report's own version of each.

**Two stages, as the report trains them, in one command.** ``lab5-concat`` and ``lab5-cma`` declare
their stages: ``msabench run --method lab5-concat --dataset lab5`` first runs (or reuses) the unimodal
fine-tuning runs of the same seed, dataset, data options and protocol, ``lab5-bert`` (BERT [CLS] ->
Linear, AdamW 2e-5) and ``lab5-resnet50`` (ResNet-50 pooled features -> Linear, Adam 1e-3, 5 epochs),
each an ordinary run that selects on validation, tests once and saves its weights beside its result;
then it trains the fusion head on the two encoders started from those checkpoints and frozen (AdamW
2e-5, weight decay 1e-5). Frozen encoders run once per split and their features are cached.

A stage-1 setting is changed with a stage-qualified ``--set lab5-bert:train.lr=3e-5`` (that stage run gets
its own row, the fusion row a variant); ``--set text.init_from=PATH`` points the text encoder at another
checkpoint and ``--set text.init_from=null`` starts it from the pretrained weights (the text stage then
does not run). msabench refuses a stage-1 checkpoint trained on other train or valid samples.

The ``-report`` methods follow the report where it departs from our main rows (see the README): no BERT
attention mask, a randomly initialised ResNet-50, 5 fusion epochs, and an explicit L2 term instead of
decoupled weight decay.

The report's numbers are accuracies on its own 500-sample validation split of the full Lab5 data,
not on a test split: they are shown beside ours as a rough reference only.
"""

from msabench import Method, Reported, Stage, hookimpl

from .data import Lab5, Lab5Dev
from .fusions import ConcatLinear, CrossModalAttention

PAPER = "Lab5 course report (BERT + ResNet-50 on tweet text-image pairs)"
REPORT = "course report, accuracy on its own 500-sample validation split"
STAGE2 = {"optimizer": "adamw", "lr": 2e-5, "weight_decay": 1e-5, "batch_size": 32}
TEXT = {"pretrained": "bert-base-uncased", "pooling": "cls"}
IMAGE = {"pretrained": "microsoft/resnet-50"}
FROZEN = {"freeze": True}
STAGES = (Stage("lab5-bert", "text"), Stage("lab5-resnet50", "image"))

# The report's version: BERT without an attention mask; ResNet-50 from random weights (ResNetConfig's defaults are
# ResNet-50); 5 fusion epochs; its L2 term lambda * sum(w^2), lambda = 1e-5, added to the loss under AdamW without
# decoupled decay, which is Adam with (coupled) weight_decay 2 * lambda: the same gradient, step for step.
REPORT_TEXT = {**TEXT, "attention_mask": False}
REPORT_IMAGE = {"config": {}}
REPORT_STAGE2 = {"optimizer": "adam", "lr": 2e-5, "weight_decay": 2e-5, "batch_size": 32, "max_epochs": 5}
REPORT_STAGES = (Stage("lab5-bert-report", "text"), Stage("lab5-resnet50-report", "image"))
AS_REPORTED = " as the report trains it (no attention mask, random ResNet-50, 5 fusion epochs, explicit L2)"


def lab5(name, encoders, fusion, hparams, accuracy, note, stages=()):
    return Method(
        name=name,
        paper=f"{PAPER}: {note}",
        encoders=encoders,
        fusion=fusion,
        objective="cross-entropy",
        hparams=hparams,
        reported=(Reported("lab5", REPORT, {"Acc": accuracy}),),
        tasks=("classification",),
        stages=stages,
    )


BERT_TRAIN = {"optimizer": "adamw", "lr": 2e-5, "batch_size": 32}
RESNET_TRAIN = {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "max_epochs": 5}
CMA = {"hidden": 512, "dropout": 0.1}
BOTH = {"text": "hf-text", "image": "resnet50-image"}

METHODS = [
    lab5("lab5-bert", {"text": "hf-text"}, "concat-linear", {"train": BERT_TRAIN, "text": TEXT}, 74.8,
         "text only, fine-tuned (stage 1)"),
    lab5("lab5-resnet50", {"image": "resnet50-image"}, "concat-linear", {"train": RESNET_TRAIN, "image": IMAGE}, 60.2,
         "image only, fine-tuned (stage 1)"),
    lab5("lab5-concat", BOTH, "concat-linear", {"train": STAGE2, "text": FROZEN, "image": FROZEN}, 82.4,
         "concatenation of the frozen fine-tuned features (stage 2)", STAGES),
    lab5("lab5-cma", BOTH, "cross-modal-attention", {"train": STAGE2, "text": FROZEN, "image": FROZEN, "fusion": CMA},
         64.6, "cross-modal attention on the frozen fine-tuned features (stage 2)", STAGES),
    lab5("lab5-bert-report", {"text": "hf-text"}, "concat-linear", {"train": BERT_TRAIN, "text": REPORT_TEXT}, 74.8,
         "text only (stage 1)" + AS_REPORTED),
    lab5("lab5-resnet50-report", {"image": "resnet50-image"}, "concat-linear",
         {"train": RESNET_TRAIN, "image": REPORT_IMAGE}, 60.2, "image only (stage 1)" + AS_REPORTED),
    lab5("lab5-concat-report", BOTH, "concat-linear", {"train": REPORT_STAGE2, "text": FROZEN, "image": FROZEN}, 82.4,
         "concatenation (stage 2)" + AS_REPORTED, REPORT_STAGES),
    lab5("lab5-cma-report", BOTH, "cross-modal-attention",
         {"train": REPORT_STAGE2, "text": FROZEN, "image": FROZEN, "fusion": CMA}, 64.6,
         "cross-modal attention (stage 2)" + AS_REPORTED, REPORT_STAGES),
]  # fmt: skip


@hookimpl
def register_datasets(register):
    register(Lab5)
    register(Lab5Dev)


@hookimpl
def register_commands(cli):
    from . import commands

    commands.add(cli)


@hookimpl
def register_fusions(register):
    register(ConcatLinear)
    register(CrossModalAttention)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)
