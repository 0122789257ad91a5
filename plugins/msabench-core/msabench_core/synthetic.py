"""The synthetic datasets msabench registers: MOSI- and SIMS-shaped pickles and tweet-like text-image pairs,
each with a planted cross-modal signal (see `msabench.synthetic`). They test the harness and are never
comparable with real data."""

from msabench import Task
from msabench.formats import SyntheticImageText, SyntheticMMSA, SyntheticMulT


class SyntheticMOSI(SyntheticMMSA):
    """Synthetic data with CMU-MOSI's layout and dims (768/5/20), labels in [-3, 3]; not comparable to real data."""

    name = "synthetic-mosi"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    dims = {"text": 768, "audio": 5, "vision": 20}
    files = {"synthetic-mosi/Processed/unaligned.pkl": None}
    hparams_from = "mosi"


class SyntheticMOSIAligned(SyntheticMOSI):
    """Synthetic data with CMU-MOSI's aligned layout (audio and vision aligned to the 24 text tokens, no lengths
    keys), labels in [-3, 3]; for the methods that need aligned sequences. Not comparable to real data."""

    name = "synthetic-mosi-aligned"
    lengths = {"text": 24, "audio": 24, "vision": 24}
    aligned = True
    files = {"synthetic-mosi-aligned/Processed/aligned.pkl": None}


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


class SyntheticIEMOCAP(SyntheticMulT):
    """Synthetic data in MulT's IEMOCAP layout and dims (300/74/35), four binary emotions; not comparable to real."""

    name = "synthetic-iemocap"
    files = {"synthetic-iemocap/iemocap_data_noalign.pkl": None}
    hparams_from = "iemocap"


class SyntheticTweets(SyntheticImageText):
    """Synthetic tweets + images (three classes) with a planted text-image signal; not comparable to real data."""

    name = "synthetic-imagetext"
