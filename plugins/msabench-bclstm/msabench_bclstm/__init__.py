"""bc-LSTM (Poria et al., "Context-Dependent Sentiment Analysis in User-Generated Videos", ACL 2017): each
utterance read in the context of the other utterances of its video by bidirectional LSTMs, in the paper's
hierarchical scheme: a contextual network per modality is trained first (level 1), then its contextual features of
every utterance are concatenated and read by a second contextual LSTM (level 2).

Methods (each trains and evaluates on whole videos, ``batches="groups"``, so it needs a dataset with groups such as
``mosi-bclstm``):

- ``bc-lstm-t``, ``bc-lstm-a``, ``bc-lstm-v``: the unimodal networks (text, audio, vision), the paper's unimodal
  rows and the stages of the others;
- ``bc-lstm-ta``, ``bc-lstm-tv``, ``bc-lstm-av``: the bimodal fusions, each started from its two unimodal stages;
- ``bc-lstm``: the trimodal fusion (T+A+V), started from the three unimodal stages.

``msabench run --method bc-lstm --dataset mosi-bclstm`` runs (or reuses) the three unimodal stages with the same
seed, then the fusion, whose encoders are the stages' networks, frozen and in eval mode (the paper feeds the level-1
features to level 2). bc-LSTM is a binary classifier of the label's polarity (score >= 0 positive): its prediction
is the signed margin (log-odds of the positive class), so its rows carry Acc-2 and F1 (has0) only (`Method.metrics`).

Hyper-parameters are the upstream code's (declare-lab/multimodal-deep-learning, ``bc-LSTM/lstm.py``): level 1 a
bidirectional LSTM of 300 units with input dropout 0.6, dropout 0.9, dense 100 (tanh), dropout 0.9, softmax;
level 2 the same LSTM with input dropout 0.4, dense 500 (ReLU); Adadelta at learning rate 1.0, batches of 10
videos, 200 epochs at most. msabench's protocol holds instead of the upstream early stopping (see the README).
"""

from msabench import Method, Reported, Stage, hookimpl

from .model import ContextEncoder, ContextFusion, PolarityCrossEntropy, SoftmaxHead

PAPER = "Poria et al., ACL 2017"
URL = "https://aclanthology.org/P17-1081"
METRICS = ("Acc-2_has0", "F1_has0")  # a binary classifier's decision: its accuracy and F1, nothing else
TRAIN = {"optimizer": "adadelta", "lr": 1.0, "batch_size": 10, "max_epochs": 200}
MODALITIES = {"t": "text", "a": "audio", "v": "vision"}
NAMES = {"text": "T", "audio": "A", "vision": "V"}

# The paper's MOSI accuracy of bc-LSTM (%, speaker-independent, on the features and split bc-LSTM released, which
# mosi-bclstm reads), by the modalities of the row, with where it was read. Only numbers whose source could be read
# are here: the paper's result tables are images in every copy the search tool reached (see the README).
PAPER_MOSI: dict[str, tuple[float, str]] = {
    "tav": (
        80.3,
        "Poria et al., ACL 2017: bc-LSTM on MOSI, T+A+V (hierarchical), accuracy, as NLP-progress quotes it "
        "(sebastianruder/NLP-progress, multimodal.md, Multimodal Sentiment Analysis: MOSI)",
    ),
}


def reported(key: str) -> tuple[Reported, ...]:
    """The paper's number for a row, on bc-LSTM's release of MOSI (the same features and split as mosi-bclstm)."""
    if key not in PAPER_MOSI:
        return ()
    value, source = PAPER_MOSI[key]
    return (Reported("mosi-bclstm", source, {"Acc-2_has0": value}),)


def unimodal(key: str) -> Method:
    modality = MODALITIES[key]
    return Method(
        name=f"bc-lstm-{key}",
        paper=f"{PAPER}, unimodal ({NAMES[modality]})",
        url=URL,
        encoders={modality: "bc-lstm-context"},
        fusion="bc-lstm-head",
        objective="polarity-cross-entropy",
        hparams={"train": TRAIN},
        reported=reported(key),
        batches="groups",
        metrics=METRICS,
    )


def fused(keys: str) -> Method:
    modalities = [MODALITIES[k] for k in keys]
    return Method(
        name="bc-lstm" if keys == "tav" else f"bc-lstm-{keys}",
        paper=f"{PAPER}, hierarchical {'+'.join(NAMES[m] for m in modalities)}",
        url=URL,
        encoders=dict.fromkeys(modalities, "bc-lstm-context"),
        fusion="bc-lstm-fusion",
        objective="polarity-cross-entropy",
        hparams={"train": TRAIN, **{m: {"freeze": True} for m in modalities}},
        reported=reported(keys),
        batches="groups",
        metrics=METRICS,
        stages=tuple(Stage(f"bc-lstm-{k}", MODALITIES[k]) for k in keys),
    )


METHODS = [*(unimodal(k) for k in "tav"), *(fused(keys) for keys in ("ta", "tv", "av", "tav"))]


@hookimpl
def register_encoders(register):
    register(ContextEncoder)


@hookimpl
def register_fusions(register):
    register(SoftmaxHead)
    register(ContextFusion)


@hookimpl
def register_objectives(register):
    register(PolarityCrossEntropy)


@hookimpl
def register_methods(register):
    for method in METHODS:
        register(method)


__all__ = ["METHODS", "ContextEncoder", "ContextFusion", "PolarityCrossEntropy", "SoftmaxHead"]
