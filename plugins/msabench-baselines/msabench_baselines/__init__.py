"""LF-DNN, TFN and LMF as MMSA runs them: pre-extracted 768-d BERT text features through an LSTM,
time-averaged audio and vision through MLPs, a fusion, L1 loss. And the LSTM baselines (`lstm.py`): EF-LSTM
(MMSA's early fusion, on aligned data) and LF-LSTM (one LSTM per modality, late fusion).

LF-LSTM is not in MMSA; it is the late-fusion baseline of MulT's tables and the model the adaptive-weight-fusion
paper extends. Our choices (no recipe is published with it): one packed one-layer LSTM per modality
(`lstm-seq`; widths 64/16/32 for text/audio/vision, dropout 0.2 on the final states), each sequence's last
real state, concatenated into LF-DNN's head (`late-concat`: dropout 0.2, two ReLU layers of 64, linear
output), L1 (cross-entropy per emotion on IEMOCAP), Adam at 1e-3, batch 32.

Hyper-parameters are MMSA's (src/MMSA/config/config_regression.json); reported numbers are
MMSA's benchmark (results/result-stat.md at thuiar/MMSA 698bae0, 2023-12-27; unaligned data except EF-LSTM's
aligned MOSI/MOSEI rows; mean of 5 seeds), and, on LF-DNN and LF-LSTM, the "before B-fusion" MOSI Acc-2 of the
adaptive-weight-fusion paper's Table 3 (Luo et al., Journal of Software 2024: 76.68 and 74.78; its "after" rows
are msabench-awf's lf-dnn-gb and lf-lstm-gb). Each component's docstring lists where it departs from MMSA's
code to follow its paper.
"""

import functools

from msabench import Method, Reported, hookimpl, mmsa_reported

from .encoders import LSTMText, MeanMLP
from .fusions import LateConcat, LowRankFusion, TensorFusion
from .lstm import METHODS as LSTM_METHODS
from .lstm import EarlyFusionLSTM

ENCODERS = {"text": "lstm-text", "audio": "mean-mlp", "vision": "mean-mlp"}
MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"
LUO = "Luo et al., Journal of Software 2024, Table 3 (before B-fusion; msabench-awf has the after rows)"


def sections(text_hidden, text_out, audio, vision, dropouts, fusion, train):
    """Method hparams from MMSA's config order: hidden_dims (T, A, V) and dropouts (A, V, T, post)."""
    return {
        "text": {"hidden": text_hidden, "out": text_out},
        "audio": {"hidden": audio, "dropout": dropouts[0]},
        "vision": {"hidden": vision, "dropout": dropouts[1]},
        "fusion": fusion,
        "train": train,
    }


mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)
sims = functools.partial(mmsa_reported, "sims")


def lf_dnn(t, a, v, text_out, post, drop, batch, lr, wd):
    return sections(
        t,
        text_out,
        a,
        v,
        drop,
        {"post_fusion_dim": post, "dropout": drop[3]},
        {"batch_size": batch, "lr": lr, "weight_decay": wd},
    )


def tfn(t, a, v, text_out, post, drop, batch, lr):
    return sections(
        t, text_out, a, v, drop, {"post_fusion_dim": post, "dropout": drop[3]}, {"batch_size": batch, "lr": lr}
    )


def lmf(t, a, v, drop, rank, batch, lr, factor_lr, wd):
    train = {"batch_size": batch, "lr": lr, "weight_decay": wd, "lr_groups": {"fusion.factors": factor_lr}}
    return sections(t, t // 2, a, v, drop, {"rank": rank}, train)


METHODS = [
    Method(
        name="lf-dnn",
        paper="Williams et al., 2018 (late-fusion DNN)",
        url="https://github.com/rhoposit/MultimodalDNN",
        encoders=ENCODERS,
        fusion="late-concat",
        objective="l1",
        hparams=lf_dnn(128, 16, 128, 256, 128, (0.2, 0.2, 0.2, 0.2), 128, 1e-3, 0.01),
        overrides={
            "mosei": lf_dnn(128, 32, 128, 128, 128, (0.2, 0.2, 0.2, 0.2), 64, 2e-3, 1e-3),
            "ch-sims": lf_dnn(128, 32, 128, 256, 32, (0.3, 0.3, 0.3, 0.5), 128, 5e-3, 5e-3),
            "ch-sims-v2": lf_dnn(64, 32, 64, 256, 32, (0.4, 0.4, 0.4, 0.4), 128, 5e-3, 0.0),
        },
        reported=(
            Reported("mosi", MMSA, mosi([77.52, 77.46, 78.63, 78.63, 38.05, 34.52, 95.48, 65.84])),
            Reported("mosei", MMSA, mosi([80.60, 80.85, 82.74, 82.52, 51.97, 50.83, 58.02, 70.87])),
            Reported("ch-sims", MMSA, sims([77.02, 64.33, 39.74, 77.27, 44.63, 55.51])),
            Reported("ch-sims-v2", MMSA, sims([79.36, 72.59, 52.76, 79.46, 30.14, 71.20])),
            Reported("mosi", LUO, {"Acc-2_non0": 76.68}),
        ),
    ),
    Method(
        name="tfn",
        paper="Zadeh et al., EMNLP 2017",
        url="https://github.com/A2Zadeh/TensorFusionNetwork",
        encoders=ENCODERS,
        fusion="tensor-fusion",
        objective="l1",
        hparams=tfn(128, 32, 128, 32, 64, (0.3, 0.3, 0.3, 0.5), 32, 1e-3),
        overrides={
            "mosei": tfn(128, 16, 128, 128, 16, (0.4, 0.4, 0.4, 0.4), 128, 5e-3),
            "ch-sims": tfn(128, 32, 128, 256, 32, (0.4, 0.4, 0.4, 0.4), 32, 5e-4),
            "ch-sims-v2": tfn(128, 32, 128, 128, 32, (0.3, 0.3, 0.3, 0.5), 128, 2e-3),
        },
        reported=(
            Reported("mosi", MMSA, mosi([77.99, 77.95, 79.08, 79.11, 39.39, 34.46, 94.73, 67.33])),
            Reported("mosei", MMSA, mosi([78.50, 78.96, 81.89, 81.74, 53.10, 51.60, 57.26, 71.41])),
            Reported("ch-sims", MMSA, sims([78.38, 65.12, 39.3, 78.62, 43.22, 59.1])),
            Reported("ch-sims-v2", MMSA, sims([80.14, 72.21, 52.55, 80.14, 30.31, 70.73])),
        ),
    ),
    Method(
        name="lmf",
        paper="Liu et al., ACL 2018",
        url="https://github.com/Justin1904/Low-rank-Multimodal-Fusion",
        encoders=ENCODERS,
        fusion="low-rank-fusion",
        objective="l1",
        hparams=lmf(128, 16, 128, (0.3, 0.3, 0.3, 0.3), 3, 64, 1e-3, 1e-3, 5e-3),
        overrides={
            "mosei": lmf(128, 16, 128, (0.2, 0.2, 0.2, 0.2), 4, 32, 1e-3, 1e-3, 1e-3),
            "ch-sims": lmf(64, 16, 64, (0.2, 0.2, 0.2, 0.2), 4, 64, 2e-3, 5e-4, 5e-3),
            "ch-sims-v2": lmf(64, 32, 64, (0.3, 0.3, 0.3, 0.5), 4, 32, 2e-3, 5e-4, 1e-4),
        },
        reported=(
            Reported("mosi", MMSA, mosi([77.9, 77.8, 79.18, 79.15, 38.13, 33.82, 95.04, 65.1])),
            Reported("mosei", MMSA, mosi([80.54, 80.94, 83.48, 83.36, 52.99, 51.59, 57.57, 71.69])),
            Reported("ch-sims", MMSA, sims([77.77, 64.68, 40.53, 77.88, 44.12, 57.59])),
            Reported("ch-sims-v2", MMSA, sims([74.18, 64.90, 47.79, 73.88, 36.72, 55.69])),
        ),
    ),
]


@hookimpl
def register_encoders(register):
    register(LSTMText)
    register(MeanMLP)


@hookimpl
def register_fusions(register):
    register(LateConcat)
    register(TensorFusion)
    register(LowRankFusion)
    register(EarlyFusionLSTM)


@hookimpl
def register_methods(register):
    for method in [*METHODS, *LSTM_METHODS]:
        register(method)
