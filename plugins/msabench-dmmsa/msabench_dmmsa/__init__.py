"""DMMSA (Liang et al., "Dynamic Tuning and Multi-Task Learning-Based Model for Multimodal Sentiment
Analysis", Appl. Sci. 2025, 15(11), 6342), its ablations, and ConFEDE (Yang et al., ACL 2023), the model it
builds on and compares with.

Every method shares one model: BERT for text (`bert-text`, reading MMSA's `text_bert` ids), a Transformer
encoder each for audio and vision (`transformer-seq`), and `feature-decomposition` (six projections and the
heads). DMMSA changes only the objective.

**Stages.** ConFEDE trains in stages and DMMSA's two settings are its stage settings: "during fine-tuning" lr
1e-5, batch 64, 150 epochs (ConFEDE's text pre-training) and "throughout the entire training process" lr 1e-4,
batch 128, 300 epochs (ConFEDE's audio and vision pre-training on MOSEI). So `dmmsa` declares three stages,
`dmmsa-text` (BERT's last layer and a regression head, fine-tuned on the text label), `dmmsa-audio` and
`dmmsa-vision` (a Transformer encoder and a head on the audio / vision label), then trains the fusion with the
text encoder frozen and the audio and vision encoders further tuned (ConFEDE's fusion stage), starting every
encoder from its stage's checkpoint; one `msabench run --method dmmsa` runs all four. `dmmsa-joint` is the
single joint run (BERT fine-tuned at 1e-5 with the rest at 1e-4, batch 64). The ablations are staged like
`dmmsa` and reuse its stage runs. `confede` has its own stages with the settings of ConFEDE's released configs
per dataset. The README lists every setting, its source, and what we chose.

Under msabench's protocol every epoch count is a cap (at most 100 epochs, patience 8).

The CPU path: `--encoder text=transformer-seq` reads MMSA's 768-d `text` features instead of BERT (the swapped
encoder drops the text stage and starts from its own defaults).
"""

from msabench import Method, Reported, Stage, hookimpl

from .confede import ConFEDE
from .fusion import FeatureDecomposition, UnimodalHead
from .objectives import DMMSA, UnimodalMSE

PAPER = "Liang et al., Appl. Sci. 2025"
URL = "https://doi.org/10.3390/app15116342"
CONFEDE_PAPER = "Yang et al., ACL 2023 (ConFEDE)"
CONFEDE_URL = "https://aclanthology.org/2023.acl-long.421"
ENCODERS = {"text": "bert-text", "audio": "transformer-seq", "vision": "transformer-seq"}
ADAMW = {"optimizer": "adamw", "weight_decay": 1e-3}
FINE_TUNING = {**ADAMW, "lr": 1e-5, "batch_size": 64, "max_epochs": 150}  # DMMSA's "during fine-tuning"
ENTIRE = {**ADAMW, "lr": 1e-4, "batch_size": 128, "max_epochs": 300}  # DMMSA's "throughout the entire training"
TEXT = {"finetune": True, "pooling": "pooler", "train_layers": 1}  # ConFEDE: BERT's pooler output, last layer trained


def sequence(layers: int) -> dict:
    """ConFEDE's audio/vision encoder: 768 wide, 8 heads, feed-forward 768, dropout 0.5."""
    return {"d_model": 768, "heads": 8, "layers": layers, "feedforward": 768, "dropout": 0.5}


# Synthetic data (no tokenizer: a random BERT) sized to learn in minutes on 2 CPU cores; random weights need far
# higher learning rates than fine-tuning does.
SMALL = {"d_model": 32, "heads": 4, "layers": 1, "feedforward": 64, "dropout": 0.1}
SMALL_TEXT = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64}
SMALL_FUSION = {"proj_dim": 32, "hidden": [64, 32], "unimodal_hidden": [16], "dropout": 0.1}
SMALL_TRAIN = {"batch_size": 32, "lr": 1e-3, "max_epochs": 40}
SYNTHETIC = {"synthetic-sims": "ch-sims", "synthetic-mosi": "mosi"}


def synthetic(sections: dict) -> dict:
    return dict.fromkeys(SYNTHETIC, sections)


# -- stages ----------------------------------------------------------------------------------------


def stage(name, modality, encoder, train, sections, overrides, label, paper, url, note) -> Method:
    """A unimodal pre-training run: one encoder, ConFEDE's regression head, MSE on the modality's own label."""
    return Method(
        name=name,
        paper=f"{paper}, {note}",
        url=url,
        encoders={modality: encoder},
        fusion="unimodal-head",
        objective="unimodal-mse",
        hparams={"train": train, modality: sections, "objective": {"label": label}},
        overrides=overrides,
    )


SMALL_STAGE = {"text": {**SMALL_TEXT, "train_layers": None}, "audio": SMALL, "vision": SMALL}


def dmmsa_stages() -> list[Method]:
    """DMMSA's stages: the text stage at the fine-tuning setting, audio and vision at the entire-training one."""
    made = []
    for modality, encoder, train, label in [
        ("text", "bert-text", FINE_TUNING, "T"),
        ("audio", "transformer-seq", ENTIRE, "A"),
        ("vision", "transformer-seq", ENTIRE, "V"),
    ]:
        sections = TEXT if modality == "text" else sequence(1)
        overrides = {"mosei": {modality: {"layers": 3}}} if modality != "text" else {}
        overrides |= synthetic({"train": SMALL_TRAIN, modality: SMALL_STAGE[modality]})
        made.append(
            stage(f"dmmsa-{modality}", modality, encoder, train, sections, overrides, label, PAPER, URL,
                  f"{modality} pre-training stage (ConFEDE's staging)")
        )  # fmt: skip
    return made


# ConFEDE's released configs (XpastaX/ConFEDE, {SIMS,MOSI,MOSEI}/config.py): per stage batch size, learning rate,
# epochs; audio and vision layers; AdamW, weight decay 1e-3.
CONFEDE = {
    "ch-sims": {"text": (64, 1e-5, 150), "av": (64, 1e-4, 300), "fusion": (32, 1e-4, 50), "layers": (2, 1)},
    "mosi": {"text": (128, 1e-4, 200), "av": (128, 1e-4, 100), "fusion": (16, 1e-4, 25), "layers": (2, 2)},
    "mosei": {"text": (64, 1e-5, 150), "av": (128, 1e-4, 300), "fusion": (8, 1e-4, 6), "layers": (3, 3)},
}


def train(batch: int, lr: float, epochs: int) -> dict:
    return {**ADAMW, "batch_size": batch, "lr": lr, "max_epochs": epochs}


def confede_stages() -> list[Method]:
    made = []
    for modality, encoder, label in [("text", "bert-text", "T"), ("audio", "transformer-seq", "A"),
                                     ("vision", "transformer-seq", "V")]:  # fmt: skip
        key = "text" if modality == "text" else "av"
        overrides = {}
        for dataset, config in CONFEDE.items():
            overrides[dataset] = {"train": train(*config[key])}
            if modality != "text":
                overrides[dataset][modality] = {"layers": config["layers"][0 if modality == "audio" else 1]}
        overrides |= synthetic({"train": SMALL_TRAIN, modality: SMALL_STAGE[modality]})
        sections = TEXT if modality == "text" else sequence(1)
        made.append(
            stage(f"confede-{modality}", modality, encoder, train(*CONFEDE["ch-sims"][key]), sections, overrides,
                  label, CONFEDE_PAPER, CONFEDE_URL, f"{modality} pre-training stage")
        )  # fmt: skip
    return made


# -- the fusion stage and the joint run -------------------------------------------------------------


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


# The fusion stage: the text encoder frozen, audio and vision further tuned (ConFEDE's fusion stage).
FUSION_SECTIONS = {"text": {"finetune": False}, "audio": {}, "vision": {}}
SMALL_FUSION_STAGE = {"train": SMALL_TRAIN, "fusion": SMALL_FUSION}
DMMSA_STAGES = (Stage("dmmsa-text", "text"), Stage("dmmsa-audio", "audio"), Stage("dmmsa-vision", "vision"))
CONFEDE_STAGES = (Stage("confede-text", "text"), Stage("confede-audio", "audio"), Stage("confede-vision", "vision"))


def dmmsa(name: str, options: dict, reported: tuple[Reported, ...], about: str) -> Method:
    return Method(
        name=name,
        paper=f"{PAPER}{about}",
        url=URL,
        encoders=ENCODERS,
        fusion="feature-decomposition",
        objective="dmmsa",
        hparams={"train": ENTIRE, **FUSION_SECTIONS, "objective": options},
        overrides=synthetic(SMALL_FUSION_STAGE),
        reported=reported,
        key_metric="MAE",
        stages=DMMSA_STAGES,
    )


def joint(layers: int) -> dict:
    """The single joint run: BERT ([CLS]) fine-tuned at 1e-5, everything else at 1e-4, batch 64, 150 epochs."""
    return {
        "train": {**FINE_TUNING, "lr": 1e-4, "lr_groups": {"encoders.text": 1e-5}},
        "text": {"finetune": True},
        "audio": sequence(layers),
        "vision": sequence(layers),
    }


JOINT_SYNTHETIC = {
    "train": {"batch_size": 32, "lr": 1e-3, "lr_groups": {"encoders.text": 5e-4}, "max_epochs": 40},
    "text": SMALL_TEXT,
    "audio": SMALL,
    "vision": SMALL,
    "fusion": SMALL_FUSION,
}

DMMSA_REPORTED = (
    Reported("ch-sims", "Table 2", sims(69.63, 46.92, 0.3778, 0.66)),
    Reported("mosi", "Table 3", mosi((83.97, 85.70), (83.92, 85.70), 45.39, 0.710, 0.793)),
    Reported("mosei", "Table 3", mosi((82.63, 86.27), (83.04, 86.21), 53.91, 0.527, 0.777)),
)

METHODS = [
    *dmmsa_stages(),
    dmmsa("dmmsa", {}, DMMSA_REPORTED, ""),
    Method(
        name="dmmsa-joint",
        paper=f"{PAPER}, trained in one joint run",
        url=URL,
        encoders=ENCODERS,
        fusion="feature-decomposition",
        objective="dmmsa",
        hparams=joint(1),
        overrides={"ch-sims": joint(1), "mosi": joint(1), "mosei": joint(3), **synthetic(JOINT_SYNTHETIC)},
        reported=DMMSA_REPORTED,
        key_metric="MAE",
    ),
    dmmsa("dmmsa-wo-msc", {"msc": False}, (Reported("ch-sims", "Table 5", sims(68.41, 44.68, 0.3807, 0.656)),),
          ", ablation w/o MSC"),
    dmmsa("dmmsa-wo-cl", {"cl": False}, (Reported("ch-sims", "Table 5", sims(69.41, 46.74, 0.3828, 0.651)),),
          ", ablation w/o CL"),
    dmmsa("dmmsa-wo-gdwg", {"gdwg": False}, (Reported("ch-sims", "Table 5", sims(69.32, 46.17, 0.3776, 0.663)),),
          ", ablation w/o GDWG"),
    *confede_stages(),
    Method(
        name="confede",
        paper=CONFEDE_PAPER,
        url=CONFEDE_URL,
        encoders=ENCODERS,
        fusion="feature-decomposition",
        objective="confede",
        hparams={"train": train(*CONFEDE["ch-sims"]["fusion"]), **FUSION_SECTIONS},
        overrides={**{d: {"train": train(*c["fusion"])} for d, c in CONFEDE.items()}, **synthetic(SMALL_FUSION_STAGE)},
        reported=(
            Reported("ch-sims", "DMMSA Table 2", sims(68.36, 43.72, 0.3924, 0.6351)),
            Reported("mosi", "DMMSA Table 3", mosi((83.85, 85.55), (83.83, 85.76), 43.82, 0.725, 0.789)),
            Reported("mosei", "DMMSA Table 3", mosi((80.7, 84.38), (81.2, 84.32), 51.96, 0.555, 0.753)),
        ),
        key_metric="MAE",  # ConFEDE's MOSI and MOSEI configs keep the best validation MAE ...
        key_metrics={"ch-sims": "Acc-2"},  # ... its CH-SIMS config the best validation Acc-2
        stages=CONFEDE_STAGES,
    ),
]  # fmt: skip


@hookimpl
def register_fusions(register):
    register(FeatureDecomposition)
    register(UnimodalHead)


@hookimpl
def register_objectives(register):
    register(DMMSA)
    register(ConFEDE)
    register(UnimodalMSE)


@hookimpl
def register_methods(register):
    for recipe_ in METHODS:
        register(recipe_)
