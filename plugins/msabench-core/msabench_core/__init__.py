"""msabench's core plugin: the MMSA datasets, any MMSA-layout file (`mmsa-custom`), IEMOCAP, MVSA, the synthetic
datasets, the shared encoders (pretrained models and feature sequences) and the shared objectives.

It is registered through the `msabench` entry-point group like any third-party plugin.
"""

from msabench import hookimpl

from .clip import ClipImage, ClipText
from .custom import MMSACustom
from .efficientnet import EfficientNetLite0Image
from .iemocap import IEMOCAP, IEMOCAPAligned
from .language import HFText
from .mmsa import MOSEI, MOSI, SIMS, MOSEIAligned, MOSIAligned, SIMSv2
from .mvsa import MVSAMultiple, MVSASingle
from .objectives import L1, MSE, CrossEntropy, L1OrCrossEntropy
from .sequence import Identity, LSTMSequence, TransformerSequence
from .synthetic import SyntheticIEMOCAP, SyntheticMOSI, SyntheticMOSIAligned, SyntheticSIMS, SyntheticTweets
from .text import BertEmbeddings, BertText
from .vision import ResNet50Image


@hookimpl
def register_datasets(register):
    for dataset in (MOSI, MOSIAligned, MOSEI, MOSEIAligned, SIMS, SIMSv2, SyntheticMOSI, SyntheticSIMS):
        register(dataset)
    for dataset in (MVSASingle, MVSAMultiple, SyntheticTweets):
        register(dataset)
    for dataset in (IEMOCAP, IEMOCAPAligned, SyntheticIEMOCAP, SyntheticMOSIAligned):
        register(dataset)
    register(MMSACustom)


@hookimpl
def register_encoders(register):
    for encoder in (BertText, TransformerSequence, ClipImage, ClipText, HFText, ResNet50Image, EfficientNetLite0Image):
        register(encoder)
    for encoder in (BertEmbeddings, Identity, LSTMSequence):
        register(encoder)


@hookimpl
def register_objectives(register):
    for objective in (L1, MSE, CrossEntropy, L1OrCrossEntropy):
        register(objective)
