"""msabench's core plugin: the MMSA datasets, the image-text datasets, the synthetic datasets and the
shared objectives.

It is registered through the `msabench` entry-point group like any third-party plugin.
"""

from msabench import hookimpl

from .imagetext import MVSAMultiple, MVSASingle, Lab5, SyntheticImageText
from .mmsa import MOSEI, MOSI, SIMS, MOSEIAligned, MOSIAligned, SIMSv2
from .objectives import L1, MSE, CrossEntropy
from .synthetic import SyntheticMOSI, SyntheticSIMS


@hookimpl
def register_datasets(register):
    for dataset in (MOSI, MOSIAligned, MOSEI, MOSEIAligned, SIMS, SIMSv2, SyntheticMOSI, SyntheticSIMS):
        register(dataset)
    for dataset in (MVSASingle, MVSAMultiple, Lab5, SyntheticImageText):
        register(dataset)


@hookimpl
def register_objectives(register):
    for objective in (L1, MSE, CrossEntropy):
        register(objective)
