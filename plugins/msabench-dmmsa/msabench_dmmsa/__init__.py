"""DMMSA (Liang et al., "Dynamic Tuning and Multi-Task Learning-Based Model for Multimodal Sentiment
Analysis", Appl. Sci. 2025, 15(11), 6342), its ablations, and the ConFEDE baseline it is compared with.

Every method here shares one model: a fine-tuned BERT for text (`bert-text`, reading MMSA's
`text_bert` ids), a Transformer encoder each for audio and vision (`transformer-seq`; 1 layer
for CH-SIMS and MOSI, 3 for MOSEI), and `feature-decomposition` (six projections and the heads).
Only the objective differs, so `dmmsa` vs `confede` on one leaderboard is the paper's claim
that the objective alone makes the gain.

Hyper-parameters from the paper: learning rate 1e-5 for BERT (fine-tuning), 1e-4 for the rest;
batch size 64 when fine-tuning BERT; up to 150 epochs (under msabench's protocol that is capped
at 100, with patience 8). AdamW with weight decay 1e-3 is ConFEDE's optimizer (its linear
warm-up schedule is not used: the protocol has no schedulers). Encoder widths (768, 8 heads,
feed-forward 768, dropout 0.5) are ConFEDE's released configuration, which DMMSA builds on.

Model selection uses validation MAE (`key_metric`): the total loss mixes terms whose GDWG weights
change every epoch, so it is not comparable across epochs, and ConFEDE's code also keeps the
checkpoint with the best validation MAE.

The CPU path: `--encoder text=transformer-seq` reads MMSA's 768-d `text` features instead of
fine-tuning BERT (the swapped encoder starts from its own defaults and the base learning rate).
"""

from msabench import Method, Reported, hookimpl

from .fusion import FeatureDecomposition
from .objectives import DMMSA, ConFEDE

PAPER = "Liang et al., Appl. Sci. 2025"
URL = "https://doi.org/10.3390/app15116342"
ENCODERS = {"text": "bert-text", "audio": "transformer-seq", "vision": "transformer-seq"}


def recipe(layers: int) -> dict:
    """The paper's settings for one dataset: fine-tuned BERT at 1e-5, everything else at 1e-4, batch 64."""
    sequence = {"d_model": 768, "heads": 8, "layers": layers, "feedforward": 768, "dropout": 0.5}
    return {
        "train": {
            "batch_size": 64,
            "lr": 1e-4,
            "lr_groups": {"encoders.text": 1e-5},
            "optimizer": "adamw",
            "weight_decay": 1e-3,
            "max_epochs": 150,
        },
        "text": {"finetune": True},
        "audio": dict(sequence),
        "vision": dict(sequence),
    }


# Synthetic data (no tokenizer: a random BERT) sized to learn in minutes on 2 CPU cores; a random
# BERT needs a far higher learning rate than fine-tuning does.
SMALL = {"d_model": 32, "heads": 4, "layers": 1, "feedforward": 64, "dropout": 0.1}
SYNTHETIC = {
    "train": {"batch_size": 32, "lr": 1e-3, "lr_groups": {"encoders.text": 5e-4}, "max_epochs": 40},
    "text": {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64},
    "audio": dict(SMALL),
    "vision": dict(SMALL),
    "fusion": {"proj_dim": 32, "hidden": [64, 32], "unimodal_hidden": [16], "dropout": 0.1},
}
OVERRIDES = {
    "ch-sims": recipe(1),
    "mosi": recipe(1),
    "mosei": recipe(3),
    "synthetic-sims": SYNTHETIC,
    "synthetic-mosi": SYNTHETIC,
}


def sims(acc3, acc5, mae, corr):
    return {"Acc-3": acc3, "Acc-5": acc5, "MAE": mae, "Corr": corr}


def mosi(acc2, f1, acc7, mae, corr):
    """Has0/non0 pairs as the paper prints them (Acc-2 and F1 'has0/non0')."""
    return {
        "Acc-2_has0": acc2[0],
        "Acc-2_non0": acc2[1],
        "F1_has0": f1[0],
        "F1_non0": f1[1],
        "Acc-7": acc7,
        "MAE": mae,
        "Corr": corr,
    }


def method(name: str, objective: str, options: dict, reported: tuple[Reported, ...], about: str) -> Method:
    return Method(
        name=name,
        paper=f"{PAPER}{about}",
        url=URL,
        encoders=ENCODERS,
        fusion="feature-decomposition",
        objective=objective,
        hparams={**recipe(1), "objective": options},
        overrides=OVERRIDES,
        reported=reported,
        key_metric="MAE",
    )


METHODS = [
    method(
        "dmmsa",
        "dmmsa",
        {},
        (
            Reported("ch-sims", "Table 2", sims(69.63, 46.92, 0.3778, 0.66)),
            Reported("mosi", "Table 3", mosi((83.97, 85.70), (83.92, 85.70), 45.39, 0.710, 0.793)),
            Reported("mosei", "Table 3", mosi((82.63, 86.27), (83.04, 86.21), 53.91, 0.527, 0.777)),
        ),
        "",
    ),
    method(
        "dmmsa-wo-msc",
        "dmmsa",
        {"msc": False},
        (Reported("ch-sims", "Table 5", sims(68.41, 44.68, 0.3807, 0.656)),),
        ", ablation w/o MSC",
    ),
    method(
        "dmmsa-wo-cl",
        "dmmsa",
        {"cl": False},
        (Reported("ch-sims", "Table 5", sims(69.41, 46.74, 0.3828, 0.651)),),
        ", ablation w/o CL",
    ),
    method(
        "dmmsa-wo-gdwg",
        "dmmsa",
        {"gdwg": False},
        (Reported("ch-sims", "Table 5", sims(69.32, 46.17, 0.3776, 0.663)),),
        ", ablation w/o GDWG",
    ),
    method(
        "confede",
        "confede",
        {},
        (Reported("ch-sims", "DMMSA Table 2", sims(68.36, 43.72, 0.3924, 0.6351)),),
        " (ConFEDE objective: Yang et al., ACL 2023)",
    ),
]


@hookimpl
def register_fusions(register):
    register(FeatureDecomposition)


@hookimpl
def register_objectives(register):
    register(DMMSA)
    register(ConFEDE)


@hookimpl
def register_methods(register):
    for recipe_ in METHODS:
        register(recipe_)
