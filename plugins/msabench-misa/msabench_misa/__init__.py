"""MISA (Hazarika et al., "MISA: Modality-Invariant and -Specific Representations for Multimodal Sentiment
Analysis", ACM MM 2020) as MMSA runs it: fine-tuned BERT over `text_bert` (masked mean of the last layer,
`bert-text` with ``pooling="mean"``), stacked bidirectional LSTMs with LayerNorm for audio and vision
(`misa-lstm`), projections to 128, private and shared encoders, a one-layer 2-head Transformer over the six
vectors (`misa` fusion), and task + difference + CMD similarity + reconstruction losses (`misa` objective).

Hyper-parameters are MMSA's (config_regression.json, "misa"): batch 16/64/64 (MOSI/MOSEI/CH-SIMS), Adam at
1e-4 for every parameter (BERT included), gradient values clipped to 0.8/0.8/1.0, gradients accumulated over 2
batches (MMSA's ``update_epochs``), head dropout 0.2/0.5/0.0, loss weights diff/sim/recon 0.1/0.3/1.0,
0.3/0.8/1.0 and 0.3/1.0/0.8. MMSA's optimizer gets no weight decay (the config's ``weight_decay`` is unused),
and neither does ours. Departures from MMSA: audio and vision are packed with their own lengths (MMSA uses the
text's); the host clips the averaged gradient once per optimizer step (MMSA clips after every backward).

MISA needs BERT token ids and regression (or class) labels: datasets without ``text_bert`` (IEMOCAP) are
refused before training. On synthetic data (no tokenizer) BERT is a small random one (2 layers, width 32)
trained at 1e-3. Reported numbers are MMSA's (results/result-stat.md, unaligned; MAE and Corr x100); MMSA
reports no CH-SIMS regression row for MISA.
"""

import functools

from msabench import Method, Reported, hookimpl, mmsa_reported

from .model import MISALoss, SharedPrivate, StackedBiLSTM

MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"

mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)


def recipe(batch, dropout, weights, clip):
    diff, sim, recon = weights
    return {
        "fusion": {"hidden": 128, "dropout": dropout},
        "objective": {"diff": diff, "sim": sim, "recon": recon},
        "train": {"batch_size": batch, "lr": 1e-4, "grad_clip_value": clip, "accumulate": 2},
    }


SYNTHETIC = {
    "text": {"hidden_size": 32, "layers": 2, "heads": 2, "intermediate_size": 64},
    "train": {"lr": 1e-3},
}

METHOD = Method(
    name="misa",
    paper="Hazarika et al., ACM MM 2020",
    url="https://github.com/declare-lab/MISA",
    encoders={"text": "bert-text", "audio": "misa-lstm", "vision": "misa-lstm"},
    fusion="misa",
    objective="misa",
    hparams={"text": {"pooling": "mean"}, **recipe(16, 0.2, (0.1, 0.3, 1.0), 0.8)},
    overrides={
        "mosei": recipe(64, 0.5, (0.3, 0.8, 1.0), 0.8),
        "ch-sims": recipe(64, 0.0, (0.3, 1.0, 0.8), 1.0),
        "synthetic-mosi": SYNTHETIC,
        "synthetic-sims": SYNTHETIC,
    },
    reported=(
        Reported("mosi", MMSA, mosi([81.84, 81.82, 83.54, 83.58, 47.08, 41.37, 77.65, 77.81])),
        Reported("mosei", MMSA, mosi([80.67, 81.12, 84.67, 84.66, 53.63, 52.05, 55.75, 75.15])),
    ),
)


@hookimpl
def register_encoders(register):
    register(StackedBiLSTM)


@hookimpl
def register_fusions(register):
    register(SharedPrivate)


@hookimpl
def register_objectives(register):
    register(MISALoss)


@hookimpl
def register_methods(register):
    register(METHOD)
