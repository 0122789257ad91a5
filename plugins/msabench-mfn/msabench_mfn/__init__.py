"""MFN (Zadeh et al., "Memory Fusion Network for Multi-view Sequential Learning", AAAI 2018) as MMSA runs it on
word-aligned data: MMSA's 768-d BERT text features, audio and vision frames as sequences (`identity`
encoders), the `memory-fusion` fusion, L1 loss (per-emotion cross-entropy on IEMOCAP, `l1-ce`).

Hyper-parameters are MMSA's (config_regression.json, "mfn"): LSTM widths (text, audio, vision) 256/32/256
(MOSI), 128/32/128 (MOSEI), 64/16/64 (CH-SIMS); memory 400/128/64; the five small networks' widths and dropouts;
batch 128/64/32; Adam at 2e-3/5e-4/1e-3 with weight decay 0/1e-4/0. Reported numbers are MMSA's
(results/result-stat.md; MAE and Corr there are x100): MOSI and MOSEI on the aligned files, CH-SIMS pooled.
IEMOCAP has no MMSA recipe: the defaults (MOSI's) apply. Departures from MMSA are in `MemoryFusion`'s docstring.
"""

import functools

from msabench import Method, Reported, hookimpl, mmsa_reported

from .fusion import MemoryFusion

MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"

mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)
sims = functools.partial(mmsa_reported, "sims")


def recipe(hidden, memory, attention, summary, retain, update, output, batch, lr, wd):
    """MMSA's config for one dataset; each network is [width, dropout] (NN1, NN2, gamma1, gamma2, out)."""
    return {
        "fusion": {
            "hidden": hidden,
            "memory": memory,
            "attention": attention,
            "summary": summary,
            "retain": retain,
            "update": update,
            "output": output,
        },
        "train": {"batch_size": batch, "lr": lr, "weight_decay": wd},
    }


METHOD = Method(
    name="mfn",
    paper="Zadeh et al., AAAI 2018",
    url="https://github.com/pliang279/MFN",
    encoders={"text": "identity", "audio": "identity", "vision": "identity"},
    fusion="memory-fusion",
    objective="l1-ce",
    hparams=recipe([256, 32, 256], 400, [32, 0.2], [64, 0.0], [256, 0.7], [32, 0.5], [128, 0.0], 128, 2e-3, 0.0),
    overrides={
        "mosei": recipe(
            [128, 32, 128], 128, [128, 0.2], [128, 0.5], [256, 0.7], [256, 0.0], [128, 0.5], 64, 5e-4, 1e-4
        ),
        "ch-sims": recipe([64, 16, 64], 64, [128, 0.2], [128, 0.0], [64, 0.2], [64, 0.7], [64, 0.7], 32, 1e-3, 0.0),
    },
    reported=(
        Reported("mosi-aligned", MMSA, mosi([77.67, 77.63, 78.87, 78.90, 40.47, 35.83, 92.68, 67.02])),
        Reported("mosei-aligned", MMSA, mosi([78.94, 79.55, 82.86, 82.85, 52.76, 51.34, 57.33, 71.82])),
        Reported("ch-sims", MMSA, sims([77.9, 65.73, 39.47, 77.88, 43.49, 58.24])),
    ),
    tasks=("regression", "multilabel"),
)


@hookimpl
def register_fusions(register):
    register(MemoryFusion)


@hookimpl
def register_methods(register):
    register(METHOD)
