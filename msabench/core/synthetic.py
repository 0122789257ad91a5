"""The synthetic datasets msabench registers: MOSI- and SIMS-shaped pickles and tweet-like text-image pairs,
each with a planted cross-modal signal (see `msabench.synthetic`). They test the harness and are never
comparable with real data."""

from msabench import SyntheticImageText, SyntheticMMSA, Task


class SyntheticMOSI(SyntheticMMSA):
    """Synthetic data with CMU-MOSI's layout and dims (768/5/20), labels in [-3, 3]; not comparable to real data."""

    name = "synthetic-mosi"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    dims = {"text": 768, "audio": 5, "vision": 20}
    files = {"synthetic-mosi/Processed/unaligned.pkl": None}
    hparams_from = "mosi"


class SyntheticSIMS(SyntheticMMSA):
    """Synthetic data with CH-SIMS's layout and feature dims (768/33/709), unimodal labels, labels in [-1, 1]."""

    name = "synthetic-sims"
    task = Task("regression", "sims", label_range=(-1.0, 1.0))
    labels = ("label", "label_T", "label_A", "label_V")
    dims = {"text": 768, "audio": 33, "vision": 709}
    lengths = {"text": 24, "audio": 40, "vision": 20}
    scale = 0.4
    language = "zh"
    files = {"synthetic-sims/Processed/unaligned.pkl": None}
    hparams_from = "ch-sims"


class SyntheticTweets(SyntheticImageText):
    """Synthetic tweets + images (three classes) with a planted text-image signal; not comparable to real data."""

    name = "synthetic-imagetext"
