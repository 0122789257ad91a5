"""LRCMT (Sun, Che, Gao, "面向多模态情感分析的低秩跨模态Transformer", Computer Engineering & Science 2024,
46(10): 1888-1900): low-rank adapters (LoRA) trained in every layer of a frozen pretrained language model, and a
cross-modal module in which vision and audio first interact with each other, then with the text.

Only the abstract is public, so everything below the abstract's level is our choice (see the README):

- text: BERT over `text_bert` ids with LoRA from peft (`lora-bert`): rank 8, alpha 16 (scale 2), dropout 0.1 on
  the query, key, value and attention-output projections of every layer; BERT's weights frozen;
- audio and vision: the feature sequences (`identity`), projected to 72 by the fusion (`lrcmt`);
- audio attends to vision and vision to audio (one crossmodal Transformer layer each, 4 heads), the enriched
  streams are joined; the text's tokens attend to the joined stream, are averaged, and a ReLU layer and a linear
  output predict; L1 loss. Trainable: 0.768 % of the parameters at BERT-base size on MOSI's dims (LoRA 589,824 +
  module and head 252,505 of 109.73 M; the width 72 is what brings the share to the abstract's 0.76 %);
- AdamW at 5e-4, weight decay 0.01, batch 32; the protocol's epochs and patience.

Ablations (the abstract's): ``lrcmt-frozen`` (frozen LM, no adapters), ``lrcmt-full`` (full fine-tuning instead
of LoRA; BERT at 2e-5), ``lrcmt-direct`` (the text attends to audio and vision directly, no audio-visual stage).
The paper's numbers are not public: no reported rows.
"""

from msabench import Method, hookimpl

from .encoder import LoraBert
from .fusion import LowRankCrossmodal

PAPER = "Sun et al., Computer Engineering & Science 2024"
URL = ""  # Computer Engineering & Science 2024, 46(10): 1888-1900; only the abstract is public
ENCODERS = {"text": "lora-bert", "audio": "identity", "vision": "identity"}
TRAIN = {"batch_size": 32, "lr": 5e-4, "optimizer": "adamw", "weight_decay": 0.01}
SYNTHETIC = {"train": {"lr": 1e-3}}  # no tokenizer there: a small random BERT


def lrcmt(name, paper, text=None, fusion=None, train=None):
    return Method(
        name=name,
        paper=paper,
        url=URL,
        encoders=ENCODERS,
        fusion="lrcmt",
        objective="l1",
        hparams={"text": dict(text or {}), "fusion": dict(fusion or {}), "train": {**TRAIN, **(train or {})}},
        overrides={"synthetic-mosi": SYNTHETIC, "synthetic-sims": SYNTHETIC},
    )


METHODS = [
    lrcmt("lrcmt", PAPER),
    lrcmt("lrcmt-frozen", f"{PAPER}, ablation: frozen LM without adapters", text={"adapter": "frozen"}),
    lrcmt(
        "lrcmt-full",
        f"{PAPER}, ablation: full fine-tuning instead of LoRA",
        text={"adapter": "full"},
        train={"lr_groups": {"encoders.text": 2e-5}},
    ),
    lrcmt("lrcmt-direct", f"{PAPER}, ablation: text with audio and vision directly", fusion={"interaction": "direct"}),
]


@hookimpl
def register_encoders(register):
    register(LoraBert)


@hookimpl
def register_fusions(register):
    register(LowRankCrossmodal)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)


__all__ = ["METHODS", "LoraBert", "LowRankCrossmodal"]
