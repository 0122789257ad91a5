"""The public API for dataset plugins that read files: MMSA's and MulT's pickles, image-text folders, synthetic
data in those layouts, and the safe readers and checks they are built from.

``from msabench.formats import MMSADataset, check_file`` — plugins import these from here, not from the modules
that define them (which may move).
"""

from msabench.decode import decode_text, open_image
from msabench.imagetext import ImageTextDataset, Sample, index_lines, read_samples, safe_id, split_tensors
from msabench.integrity import check_file, sha256
from msabench.mmsa import MMSADataset, mmsa_data
from msabench.mult import MulTDataset, mult_data
from msabench.options import flag, whole
from msabench.pickles import read_pickle, write_pickle
from msabench.results import write_atomic
from msabench.splits import read_split_file, stratified_split, subsample_train
from msabench.synthetic import SyntheticImageText, SyntheticMMSA, SyntheticMulT

__all__ = [
    "ImageTextDataset",
    "MMSADataset",
    "MulTDataset",
    "Sample",
    "SyntheticImageText",
    "SyntheticMMSA",
    "SyntheticMulT",
    "check_file",
    "decode_text",
    "flag",
    "index_lines",
    "mmsa_data",
    "mult_data",
    "open_image",
    "read_pickle",
    "read_samples",
    "read_split_file",
    "safe_id",
    "sha256",
    "split_tensors",
    "stratified_split",
    "subsample_train",
    "whole",
    "write_atomic",
    "write_pickle",
]
