"""IEMOCAP as MulT publishes it: four emotions (Neutral, Happy, Sad, Angry), each absent or present, with
300-d GloVe word vectors, 74-d COVAREP audio and 35-d Facet vision; one pickle aligned to the words, one not.

MulT's files carry no ids and no lengths: ids are row numbers and lengths come from the zero padding (see
`msabench.mult_data`). No SHA-256 is published for them; pass ``--data-option sha256=HEX`` to check yours.
"""

from msabench import EMOTIONS, Task
from msabench.formats import MulTDataset

IEMOCAP_TASK = Task("multilabel", "iemocap", classes=EMOTIONS)


class IEMOCAP(MulTDataset):
    """IEMOCAP (Busso et al., 2008) as MulT processed it: four binary emotions (Neutral/Happy/Sad/Angry), unaligned."""

    name = "iemocap"
    task = IEMOCAP_TASK
    dims = {"text": 300, "audio": 74, "vision": 35}
    files = {"IEMOCAP/iemocap_data_noalign.pkl": None}


class IEMOCAPAligned(IEMOCAP):
    """IEMOCAP as MulT processed it, audio and vision aligned to the words (iemocap_data.pkl)."""

    name = "iemocap-aligned"
    files = {"IEMOCAP/iemocap_data.pkl": None}
    hparams_from = "iemocap"
