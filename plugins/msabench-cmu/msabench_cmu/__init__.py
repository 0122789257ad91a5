"""The CMU-MultimodalSDK's formats for msabench: a reader (and writer) of computational sequences (`.csd`, HDF5)
for any sequence (labels, words, GloVe, COVAREP, FACET, OpenFace), the SDK's standard folds of CMU-MOSI and
CMU-MOSEI, and the dataset `mosi-bclstm` (bc-LSTM's released utterance features joined with the SDK's labels).
"""

from msabench import hookimpl

from .bclstm import MOSIbcLSTM
from .csd import ComputationalSequence, Segments, open_csd, write_csd
from .folds import FOLDS, fold_of


@hookimpl
def register_datasets(register):
    register(MOSIbcLSTM)


__all__ = ["FOLDS", "ComputationalSequence", "MOSIbcLSTM", "Segments", "fold_of", "open_csd", "write_csd"]
