"""msabench's core plugin: the MMSA datasets, the synthetic datasets, the shared encoders and objectives.

It is registered through the `msabench` entry-point group like any third-party plugin.
"""

from msabench import hookimpl

from .mmsa import MOSEI, MOSI, SIMS, MOSEIAligned, MOSIAligned, SIMSv2
from .objectives import L1, MSE, CrossEntropy
from .sequence import TransformerSequence
from .synthetic import SyntheticMOSI, SyntheticSIMS
from .text import BertText


@hookimpl
def register_datasets(register):
    for dataset in (MOSI, MOSIAligned, MOSEI, MOSEIAligned, SIMS, SIMSv2, SyntheticMOSI, SyntheticSIMS):
        register(dataset)


@hookimpl
def register_encoders(register):
    register(BertText)
    register(TransformerSequence)


@hookimpl
def register_objectives(register):
    for objective in (L1, MSE, CrossEntropy):
        register(objective)
