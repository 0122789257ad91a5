"""Self-MM (Yu et al., "Learning Modality-Specific Representations with Self-Supervised Multi-Task Learning for
Multimodal Sentiment Analysis", AAAI 2021) as MMSA runs it: fine-tuned BERT's [CLS] vector (`bert-text`),
one-layer packed LSTMs for audio and vision (`lstm-seq`: final state, dropout, linear), multimodal and unimodal
heads (`self-mm` fusion) and the loss with the unimodal label generation module (`self-mm` objective).

Hyper-parameters are MMSA's (config_regression.json, "self_mm"): batch 16/32/32 (MOSI/MOSEI/CH-SIMS), Adam with
per-part learning rates and weight decays (BERT 5e-5/1e-3; audio 5e-3 with decay 1e-3/0/0.01; video 5e-3/1e-4/
5e-3 with decay 1e-3/0/0.01; the rest 1e-3 with decay 1e-3/0.01/1e-3), gradients accumulated over 4 batches
(MMSA's ``update_epochs``), LSTM widths 16 (audio) and 32/32/64 (video) with outputs 16/32, head widths
128/32/16/32 (CH-SIMS text 64), their dropouts, and the label clamp H = 3/3/1.

Departures from MMSA: BERT's biases and LayerNorm weights get its weight decay too (MMSA exempts them; the
host's ``lr_groups`` match parameter-name prefixes); on aligned data each modality is packed with its own
lengths (the loader gives aligned files the text's). Self-MM needs BERT token ids and regression labels: IEMOCAP
is refused before training. On synthetic data (no tokenizer) BERT is a small random one (2 layers, width 32)
trained at 5e-4. Reported numbers are MMSA's (results/result-stat.md, unaligned; MAE and Corr x100).
"""

import functools

from msabench import Method, Reported, hookimpl, mmsa_reported

from .model import SelfMMHeads, UnimodalLabels

MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"

mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)
sims = functools.partial(mmsa_reported, "sims")


def recipe(batch, rates, decays, vision_hidden, text_dim, dropouts, H):  # noqa: N803
    """MMSA's config for one dataset: rates and decays are (bert, audio, video, other); dropouts (fusion, T, A, V)."""
    return {
        "audio": {"hidden": 16, "out": 16, "dropout": 0.0},
        "vision": {"hidden": vision_hidden, "out": 32, "dropout": 0.0},
        "fusion": {
            "fusion_dim": 128,
            "text_dim": text_dim,
            "audio_dim": 16,
            "vision_dim": 32,
            "fusion_dropout": dropouts[0],
            "text_dropout": dropouts[1],
            "audio_dropout": dropouts[2],
            "vision_dropout": dropouts[3],
        },
        "objective": {"H": H},
        "train": {
            "batch_size": batch,
            "lr": rates[3],
            "weight_decay": decays[3],
            "accumulate": 4,
            "lr_groups": {
                f"encoders.{part}": {"lr": rate, "weight_decay": decay}
                for part, rate, decay in zip(("text", "audio", "vision"), rates[:3], decays[:3], strict=True)
            },
        },
    }


SYNTHETIC = {
    "text": {"hidden_size": 32, "layers": 2, "heads": 2, "intermediate_size": 64},
    "train": {"lr_groups": {"encoders.text": {"lr": 5e-4, "weight_decay": 1e-3}}},
}

METHOD = Method(
    name="self-mm",
    paper="Yu et al., AAAI 2021",
    url="https://github.com/thuiar/Self-MM",
    encoders={"text": "bert-text", "audio": "lstm-seq", "vision": "lstm-seq"},
    fusion="self-mm",
    objective="self-mm",
    hparams={
        "text": {"pooling": "cls"},
        **recipe(16, (5e-5, 5e-3, 5e-3, 1e-3), (1e-3, 1e-3, 1e-3, 1e-3), 32, 32, (0.0, 0.1, 0.1, 0.0), 3.0),
    },
    overrides={
        "mosei": recipe(32, (5e-5, 5e-3, 1e-4, 1e-3), (1e-3, 0.0, 0.0, 0.01), 32, 32, (0.1, 0.0, 0.0, 0.0), 3.0),
        "ch-sims": recipe(32, (5e-5, 5e-3, 5e-3, 1e-3), (1e-3, 0.01, 0.01, 1e-3), 64, 64, (0.0, 0.1, 0.1, 0.0), 1.0),
        "synthetic-mosi": SYNTHETIC,
        "synthetic-sims": SYNTHETIC,
    },
    reported=(
        Reported("mosi", MMSA, mosi([83.44, 83.36, 85.46, 85.43, 53.47, 46.67, 70.80, 79.63])),
        Reported("mosei", MMSA, mosi([83.76, 83.82, 85.15, 84.90, 55.53, 53.87, 53.09, 76.49])),
        Reported("ch-sims", MMSA, sims([80.04, 65.47, 41.53, 80.44, 42.50, 59.52])),
    ),
)


@hookimpl
def register_fusions(register):
    register(SelfMMHeads)


@hookimpl
def register_objectives(register):
    register(UnimodalLabels)


@hookimpl
def register_methods(register):
    register(METHOD)
