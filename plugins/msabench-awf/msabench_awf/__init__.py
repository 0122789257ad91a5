"""Adaptive weight fusion (Luo, Wu, Liu, Tang, "基于自适应权值融合的多模态情感分析方法", Journal of Software 2024,
35(10): 4781-4793): fine-tuned BERT's [CLS] vector for text (on IEMOCAP, whose files hold word vectors and no
token ids, a one-directional LSTM over them instead), one-directional LSTMs over audio and vision, a linear
layer W_i per modality, B-fusion's gradient-balanced weights and A-fusion's modal attention averaged, a
regression (or per-emotion) head; L1 (cross-entropy per emotion on IEMOCAP).

Registered:

- ``awf`` (Table 4 / 5; Table 7's SGD+GB): every parameter by plain SGD at Table 2's learning rate, omega by
  B-fusion's own SGD; ``awf-adam`` (Table 7's Adam+GB); ``awf-no-gb`` and ``awf-adam-no-gb`` (Table 7's SGD and
  Adam rows: omega stays 1);
- ``awf-wo-afusion`` (Table 9, and Table 10's 0:0:0 row, which has the same numbers): no A-fusion, Z = Z_GB;
- ``awf-afusion-observed`` (Table 10's ratio rows, which are observed, not imposed): ``awf`` is trained first (a
  stage: same seed, data and protocol), then everything but A-fusion is started from it and frozen, and A-fusion
  alone learns; its ratios (``ratio_T/A/V`` in the history) are what it settles on;
- B-fusion as an add-on (`b-fusion`, wrapping a registered late fusion by name; Table 3, MOSI):
  ``lf-dnn-gb`` and ``lf-lstm-gb`` (before: msabench-baselines' ``lf-dnn`` and ``lf-lstm``), ``lf-dnn-bert`` ->
  ``lf-dnn-bert-gb`` and ``lf-lstm-bert`` -> ``lf-lstm-bert-gb`` (BERT's [CLS] vector as the text input).

Hyper-parameters are Table 2's (MOSI / MOSEI / CH-SIMS / IEMOCAP): batch 64/64/16/24, lr 1e-4/1e-5/1e-5/1e-4,
unimodal width (the LSTMs' and W_i's) 256/128/128/256, post-fusion width 128/128/64/128, dropout 0/0.4/0/0.4,
50 epochs. The paper's early stopping (patience 20/1/8/8) is a protocol variant (`PAPER_PATIENCE`, `msabench run
--patience N`), not the default. Reported numbers: accuracies and F1 are the paper's non-zero Acc-2/F1 (SIMS:
Acc-2, F1); the paper's MAE and Corr are x100, divided here. See the README for every choice the paper leaves
open.
"""

import copy

from msabench import Method, Reported, Stage, hookimpl

from .balance import Balancer
from .fusion import AdaptiveWeightFusion, BalancedFusion, ModalAttention

PAPER = "Luo et al., Journal of Software 2024"
URL = "https://www.jos.org.cn/"  # the journal (Journal of Software, 2024, 35(10): 4781-4793)
ENCODERS = {"text": "bert-text", "audio": "lstm-seq", "vision": "lstm-seq"}
IEMOCAP_ENCODERS = {"iemocap": {"text": "lstm-seq"}}  # word vectors, no BERT token ids
PAPER_PATIENCE = {"mosi": 20, "mosei": 1, "ch-sims": 8, "iemocap": 8}  # Table 2's early stop, as a protocol variant


# Synthetic data only: plain SGD at Table 2's rates barely moves a randomly initialised model in a short run.
SYNTHETIC = {"sgd": {"train": {"lr": 0.1, "momentum": 0.9}}, "adam": {"train": {"lr": 1e-3}}}


def table2(batch, lr, hidden, post, dropout, optimizer="sgd"):
    """One dataset's column of Table 2."""
    return {
        "audio": {"hidden": hidden},
        "vision": {"hidden": hidden},
        "fusion": {"dim": hidden, "post_fusion_dim": post, "dropout": dropout},
        "train": {"batch_size": batch, "lr": lr, "optimizer": optimizer, "max_epochs": 50},
    }


def recipes(optimizer, **fusion):
    """Table 2 for every dataset (MOSI's as the defaults), with `fusion` settings on top; synthetic data (no
    tokenizer: a small random BERT) trains at a higher rate so that a short run learns."""
    defaults = table2(64, 1e-4, 256, 128, 0.0, optimizer)
    overrides = {
        "mosei": table2(64, 1e-5, 128, 128, 0.4, optimizer),
        "ch-sims": table2(16, 1e-5, 128, 64, 0.0, optimizer),
        "iemocap": {**table2(24, 1e-4, 256, 128, 0.4, optimizer), "text": {"hidden": 256}},
        **dict.fromkeys(("synthetic-mosi", "synthetic-sims", "synthetic-iemocap"), SYNTHETIC[optimizer]),
    }
    overrides = copy.deepcopy(overrides)
    for sections in (defaults, *overrides.values()):
        if "fusion" in sections:
            sections["fusion"].update(fusion)
    return defaults, overrides


def acc_f1(dataset, acc, f1, source):
    keys = ("Acc-2", "F1") if dataset == "ch-sims" else ("Acc-2_non0", "F1_non0")
    return Reported(dataset, source, dict(zip(keys, (acc, f1), strict=True)))


def table7(mosi, mosei, sims):
    return tuple(
        acc_f1(d, *v, "Table 7") for d, v in zip(("mosi", "mosei", "ch-sims"), (mosi, mosei, sims), strict=True)
    )


def awf_method(name, optimizer, reported, **fusion):
    hparams, overrides = recipes(optimizer, **fusion)
    return Method(
        name=name,
        paper=PAPER,
        url=URL,
        encoders=ENCODERS,
        fusion="awf",
        objective="l1-ce",
        hparams=hparams,
        overrides=overrides,
        reported=reported,
        tasks=("regression", "multilabel"),
        dataset_encoders=IEMOCAP_ENCODERS,
    )


IEMOCAP_TABLE5 = {  # emotion: (Acc, F1)
    "Happy": (86.4, 84.2),
    "Sad": (85.2, 84.7),
    "Angry": (86.3, 86.7),
    "Neutral": (71.3, 71.4),
}

AWF = awf_method(
    "awf",
    "sgd",
    (
        Reported("mosi", "Table 4", {"Acc-2_non0": 86.28, "F1_non0": 86.38, "MAE": 0.7163, "Corr": 0.791}),
        Reported("mosei", "Table 4", {"Acc-2_non0": 86.38, "F1_non0": 86.46, "MAE": 0.5349, "Corr": 0.7702}),
        Reported("ch-sims", "Table 4", {"Acc-2": 80.96, "F1": 81.28}),
        Reported(
            "iemocap",
            "Table 5",
            {f"{kind}_{e}": v[i] for e, v in IEMOCAP_TABLE5.items() for i, kind in enumerate(("Acc", "F1"))},
        ),
    ),
)

METHODS = [
    AWF,
    awf_method("awf-adam", "adam", table7((85.06, 85.1), (85.14, 85.3), (79.87, 80.95))),
    awf_method("awf-no-gb", "sgd", table7((84.45, 84.48), (84.84, 84.92), (79.65, 79.48)), balance=False),
    awf_method("awf-adam-no-gb", "adam", table7((84.30, 84.34), (84.56, 84.52), (79.43, 79.21)), balance=False),
    awf_method(
        "awf-wo-afusion",
        "sgd",
        (acc_f1("mosi", 85.37, 85.43, "Table 9"), acc_f1("mosei", 85.99, 86.11, "Table 9 / Table 10 (0:0:0)")),
        attention=False,
    ),
]

# Table 10 (MOSEI): attention ratios T:A:V and Acc-2 / F1. 0:0:0 is the model without A-fusion (awf-wo-afusion);
# the learned .36:.34:.30 row is awf itself (Table 4); the other two rows are ratios observed on trained models.
TABLE10 = {
    (0.0, 0.0, 0.0): (85.99, 86.11),
    (0.38, 0.20, 0.42): (86.05, 86.18),
    (0.35, 0.39, 0.26): (85.86, 86.00),
    (0.36, 0.34, 0.30): (86.38, 86.46),
}
OBSERVED = [ratios for ratios in TABLE10 if sum(ratios) and ratios != (0.36, 0.34, 0.30)]
# A-fusion alone, from its own initialisation: 18 weights that plain SGD at Table 2's rates would barely move.
OBSERVE_TRAIN = {"optimizer": "adam", "lr": 1e-3}


def shown(ratios: tuple[float, ...]) -> str:
    """Ratios as the paper writes them: .38:.20:.42."""
    return ":".join(f"{value:.2f}".removeprefix("0") for value in ratios)


def observed_method():
    """Table 10's experiment (`msabench_awf.fusion.observe`): the trained AWF frozen but for A-fusion."""
    hparams, overrides = recipes("sgd", observe=True)
    for name in ("iemocap", "synthetic-iemocap"):  # regression only: its text encoder must be awf's BERT
        overrides.pop(name)
    for sections in (hparams, *overrides.values()):
        train = sections.setdefault("train", {})
        train.pop("momentum", None)
        train.update(OBSERVE_TRAIN)
    hparams["text"] = {"finetune": False}
    return Method(
        name="awf-afusion-observed",
        paper=f"{PAPER}: Table 10, the attention ratios A-fusion settles on in a trained AWF",
        url=URL,
        encoders=ENCODERS,
        fusion="awf",
        objective="l1-ce",
        hparams=hparams,
        overrides=overrides,
        reported=tuple(
            acc_f1("mosei", *TABLE10[ratios], f"Table 10 (observed ratios {shown(ratios)})") for ratios in OBSERVED
        ),
        stages=(Stage("awf", "text"),),
    )


METHODS.append(observed_method())


# -- B-fusion as an add-on (Table 3, MOSI Acc-2 before -> after) ------------------------------------------------

# LF-DNN's and LF-LSTM's own recipes (msabench-baselines: MMSA's MOSI config for LF-DNN, our LF-LSTM choices)
LF_DNN = {
    "text": {"hidden": 128, "out": 256},
    "audio": {"hidden": 16, "dropout": 0.2},
    "vision": {"hidden": 128, "dropout": 0.2},
    "fusion": {"fusion": "late-concat", "post_fusion_dim": 128, "dropout": 0.2},
    "train": {"batch_size": 128, "lr": 1e-3, "weight_decay": 0.01},
}
LF_LSTM = {  # each LSTM's state through a linear layer of its width: W_i (lf-lstm has none; same function class)
    "text": {"hidden": 64, "out": 64, "dropout": 0.2},
    "audio": {"hidden": 16, "out": 16, "dropout": 0.2},
    "vision": {"hidden": 32, "out": 32, "dropout": 0.2},
    "fusion": {"fusion": "late-concat", "post_fusion_dim": 64, "dropout": 0.2},
    "train": {"batch_size": 32, "lr": 1e-3},
}
BERT_LR = {"encoders.text": 5e-5}  # BERT fine-tuned at MMSA's BERT rate (Self-MM, MISA); the rest at the recipe's


def with_bert(recipe, width):
    """The recipe with BERT's [CLS] vector for text, projected to `width` by the fusion (W_T)."""
    sections = {key: dict(value) for key, value in recipe.items() if key != "text"}
    sections["fusion"]["project"] = {"text": width}
    sections["train"]["lr_groups"] = dict(BERT_LR)
    return sections


def addon(name, paper, encoders, recipe, objective, balance, acc, tasks=("regression",)):
    hparams = {key: dict(value) for key, value in recipe.items()}
    hparams["fusion"] = {**hparams["fusion"], "balance": balance}
    source = "Luo et al. 2024, Table 3" + (" (with B-fusion)" if balance else "")
    return Method(
        name=name,
        paper=paper,
        url=URL,
        encoders=encoders,
        fusion="b-fusion",
        objective=objective,
        hparams=hparams,
        reported=(Reported("mosi", source, {"Acc-2_non0": acc}),),
        tasks=tasks,
    )


DNN = {"text": "lstm-text", "audio": "mean-mlp", "vision": "mean-mlp"}
LSTMS = {"text": "lstm-seq", "audio": "lstm-seq", "vision": "lstm-seq"}
DNN_BERT = {**DNN, "text": "bert-text"}
LSTMS_BERT = {**LSTMS, "text": "bert-text"}


def table3(model):
    return f"{model} ({PAPER}, Table 3)"


METHODS += [
    addon("lf-dnn-gb", table3("LF-DNN + B-fusion"), DNN, LF_DNN, "l1", True, 79.42),
    addon(
        "lf-lstm-gb", table3("LF-LSTM + B-fusion"), LSTMS, LF_LSTM, "l1-ce", True, 77.41, ("regression", "multilabel")
    ),
    addon("lf-dnn-bert", table3("LF-DNN, BERT text"), DNN_BERT, with_bert(LF_DNN, 256), "l1", False, 78.05),
    addon(
        "lf-dnn-bert-gb", table3("LF-DNN, BERT text + B-fusion"), DNN_BERT, with_bert(LF_DNN, 256), "l1", True, 80.61
    ),
    addon("lf-lstm-bert", table3("LF-LSTM, BERT text"), LSTMS_BERT, with_bert(LF_LSTM, 64), "l1", False, 77.99),
    addon(
        "lf-lstm-bert-gb",
        table3("LF-LSTM, BERT text + B-fusion"),
        LSTMS_BERT,
        with_bert(LF_LSTM, 64),
        "l1",
        True,
        79.98,
    ),
]
# Table 3's "before" numbers are msabench-baselines' (on its lf-dnn and lf-lstm rows): 76.68 and 74.78.


@hookimpl
def register_fusions(register):
    register(AdaptiveWeightFusion)
    register(BalancedFusion)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)


__all__ = ["AdaptiveWeightFusion", "BalancedFusion", "Balancer", "METHODS", "ModalAttention", "PAPER_PATIENCE"]
