"""msabench's core plugin: the MMSA datasets, any MMSA-layout file (`mmsa-custom`), MVSA, the synthetic
datasets, the shared pretrained encoders and the shared objectives.

It is registered through the `msabench` entry-point group like any third-party plugin.
"""

from msabench import hookimpl

from .clip import ClipImage, ClipText
from .custom import MMSACustom
from .efficientnet import EfficientNetLite0Image
from .language import HFText
from .mmsa import MOSEI, MOSI, SIMS, MOSEIAligned, MOSIAligned, SIMSv2
from .mvsa import MVSAMultiple, MVSASingle
from .objectives import L1, MSE, CrossEntropy
from .sequence import TransformerSequence
from .synthetic import SyntheticMOSI, SyntheticSIMS, SyntheticTweets
from .text import BertText
from .vision import ResNet50Image


@hookimpl
def register_datasets(register):
    for dataset in (MOSI, MOSIAligned, MOSEI, MOSEIAligned, SIMS, SIMSv2, SyntheticMOSI, SyntheticSIMS):
        register(dataset)
    for dataset in (MVSASingle, MVSAMultiple, SyntheticTweets):
        register(dataset)
    register(MMSACustom)


@hookimpl
def register_encoders(register):
    for encoder in (BertText, TransformerSequence, ClipImage, ClipText, HFText, ResNet50Image, EfficientNetLite0Image):
        register(encoder)


@hookimpl
def register_objectives(register):
    for objective in (L1, MSE, CrossEntropy):
        register(objective)
