"""MulT (Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019) as
MMSA runs it: MMSA's 768-d BERT text features, audio and vision frames, each as a sequence (`identity`
encoders), the `mult` fusion, L1 loss for sentiment and per-emotion cross-entropy for IEMOCAP (`l1-ce`, MulT's
criteria).

Two methods:

- ``mult``: the paper's intent. Attention sees only the real frames of each sequence (its lengths, not a
  materialised mask), positions are sinusoidal, each target's representation is its last real frame.
- ``mult-causal``: MMSA's and MulT's code, for comparison: attention over the padded frames under MulT's future
  mask, fairseq's position rule (a frame whose first feature is 0 gets none), the last padded frame.

Hyper-parameters are MMSA's (src/MMSA/config/config_regression.json, "mult"): width/heads 50/10 (MOSI, CH-SIMS)
and 30/6 (MOSEI), batch 16/4/16, lr 2e-3/5e-4/2e-3, gradients accumulated over 8 batches (MMSA's
``update_epochs``), gradient values clipped to 0.6, ReduceLROnPlateau (factor 0.1) on the validation loss with
patience 5/20/10, Adam without weight decay. Departures from MMSA, besides the masking above:

- MMSA clips the running sum of the accumulated gradients after every backward and steps on their sum; the
  host averages the 8 batches' gradients and clips once per optimizer step (Adam is invariant to the scale,
  not to where the clipping happens);
- the config's ``weight_decay`` (0.005/0.001/0.001) is not passed to MMSA's optimizer, so it is not used here
  either;
- attention dropout drops each attention weight, as in MMSA; on the CPU it runs in msabench's
  `dropped_attention` (PyTorch's fused CPU kernels have no dropout), which gives the same distribution up to
  a rounding of the rate to 1/65536.

IEMOCAP has no MMSA recipe: there the defaults apply (MMSA's MOSI values). Reported numbers are MMSA's
(results/result-stat.md, unaligned data; MAE and Corr there are x100), shown beside both methods.
"""

import functools

from msabench import Method, Reported, hookimpl, mmsa_reported

from .fusion import MultimodalTransformer

ENCODERS = {"text": "identity", "audio": "identity", "vision": "identity"}
MMSA = "MMSA results/result-stat.md (thuiar/MMSA@698bae0, 2023-12-27)"
PAPER = "Tsai et al., ACL 2019"
URL = "https://github.com/yaohungt/Multimodal-Transformer"


def recipe(dim, heads, batch, lr, layers, kernels, dropouts, output, text, patience):
    """MMSA's config for one dataset: dropouts are (attn, attn_a, attn_v, relu, embed, res)."""
    attn, attn_a, attn_v, relu, embed, res = dropouts
    return {
        "fusion": {
            "dim": dim,
            "heads": heads,
            "layers": layers,
            "kernel_text": kernels[0],
            "kernel_audio": kernels[1],
            "kernel_vision": kernels[2],
            "attn_dropout": attn,
            "attn_dropout_audio": attn_a,
            "attn_dropout_vision": attn_v,
            "relu_dropout": relu,
            "embed_dropout": embed,
            "res_dropout": res,
            "output_dropout": output,
            "text_dropout": text,
        },
        "train": {
            "batch_size": batch,
            "lr": lr,
            "accumulate": 8,
            "grad_clip_value": 0.6,
            "plateau_patience": patience,
            "plateau_factor": 0.1,
        },
    }


mosi = functools.partial(mmsa_reported, "mosi")  # a row of MMSA's result-stat.md (MOSI, MOSEI)
sims = functools.partial(mmsa_reported, "sims")


MOSI = recipe(50, 10, 16, 2e-3, 4, (5, 5, 5), (0.3, 0.2, 0.0, 0.0, 0.2, 0.0), 0.5, 0.5, 5)
OVERRIDES = {
    "mosei": recipe(30, 6, 4, 5e-4, 4, (5, 1, 3), (0.4, 0.0, 0.0, 0.0, 0.0, 0.0), 0.5, 0.3, 20),
    "ch-sims": recipe(50, 10, 16, 2e-3, 2, (5, 1, 1), (0.2, 0.1, 0.0, 0.0, 0.1, 0.2), 0.1, 0.3, 10),
}
REPORTED = (
    Reported("mosi", MMSA, mosi([79.71, 79.63, 80.98, 80.95, 42.68, 36.91, 87.99, 70.22])),
    Reported("mosei", MMSA, mosi([81.15, 81.56, 84.63, 84.52, 54.18, 52.84, 55.93, 73.31])),
    Reported("ch-sims", MMSA, sims([78.56, 64.77, 37.94, 79.66, 45.32, 56.41])),
)


def method(name, mask, paper=PAPER):
    hparams = {**MOSI, "fusion": {**MOSI["fusion"], "mask": mask}}
    return Method(
        name=name,
        paper=paper,
        url=URL,
        encoders=ENCODERS,
        fusion="mult",
        objective="l1-ce",
        hparams=hparams,
        overrides=OVERRIDES,
        reported=REPORTED,
        tasks=("regression", "multilabel"),
    )


METHODS = [method("mult", "padding"), method("mult-causal", "causal", f"{PAPER} (MMSA's causal mask over the padding)")]


@hookimpl
def register_fusions(register):
    register(MultimodalTransformer)


@hookimpl
def register_methods(register):
    for m in METHODS:
        register(m)
