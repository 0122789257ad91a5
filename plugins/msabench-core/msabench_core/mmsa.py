"""CMU-MOSI, CMU-MOSEI and CH-SIMS (v1, v2) as MMSA publishes them: one pickle each."""

from msabench import Task
from msabench.formats import MMSADataset

MOSI_TASK = Task("regression", "mosi", label_range=(-3.0, 3.0))
SIMS_TASK = Task("regression", "sims", label_range=(-1.0, 1.0))


class MOSI(MMSADataset):
    """CMU-MOSI (Zadeh et al., 2016): 2,199 English clips, sentiment in [-3, 3]; BERT, COVAREP and Facet features."""

    name = "mosi"
    task = MOSI_TASK
    dims = {"text": 768, "audio": 5, "vision": 20}
    sizes = {"train": 1284, "valid": 229, "test": 686}
    files = {"MOSI/Processed/unaligned_50.pkl": "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524"}
    tokenizer, vocab_size = "bert-base-uncased", 30522


class MOSIAligned(MOSI):
    """CMU-MOSI with audio and vision aligned to the 50 text tokens."""

    name = "mosi-aligned"
    files = {"MOSI/Processed/aligned_50.pkl": "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9"}
    hparams_from = "mosi"


class MOSEI(MMSADataset):
    """CMU-MOSEI (Zadeh et al., 2018): 22,856 English clips, sentiment in [-3, 3]."""

    name = "mosei"
    task = MOSI_TASK
    dims = {"text": 768, "audio": 74, "vision": 35}
    sizes = {"train": 16326, "valid": 1871, "test": 4659}
    files = {"MOSEI/Processed/unaligned_50.pkl": "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f"}
    tokenizer, vocab_size = "bert-base-uncased", 30522


class MOSEIAligned(MOSEI):
    """CMU-MOSEI with audio and vision aligned to the 50 text tokens."""

    name = "mosei-aligned"
    files = {"MOSEI/Processed/aligned_50.pkl": "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791"}
    hparams_from = "mosei"


class SIMS(MMSADataset):
    """CH-SIMS (Yu et al., 2020): 2,281 Mandarin clips with multimodal and unimodal (T/A/V) labels in [-1, 1]."""

    name = "ch-sims"
    task = SIMS_TASK
    labels = ("label", "label_T", "label_A", "label_V")
    dims = {"text": 768, "audio": 33, "vision": 709}
    sizes = {"train": 1368, "valid": 456, "test": 457}
    language = "zh"
    files = {"SIMS/Processed/unaligned_39.pkl": "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f"}
    tokenizer, vocab_size = "bert-base-chinese", 21128


class SIMSv2(SIMS):
    """CH-SIMS v2 (Liu et al., 2022), supervised part: 4,403 Mandarin clips with unimodal labels.

    No SHA-256 is published for it, so its results are always marked unverified.
    """

    name = "ch-sims-v2"
    dims = {"text": 768, "audio": 25, "vision": 177}
    sizes = {"train": 2722, "valid": 647, "test": 1034}
    files = {"SIMSv2/Processed/sims_unaligned.pkl": None}  # MMSA's config name for it
    source = "the CH-SIMS v2 release (https://github.com/thuiar/ch-sims-v2; its unaligned.pkl), saved under MMSA's name"
