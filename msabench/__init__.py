"""msabench: a benchmark harness for multimodal sentiment analysis, extended by pluggy plugins."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("msabench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from msabench.catalog import Catalog
from msabench.components import (
    Batch,
    Data,
    Dataset,
    Encoder,
    Fusion,
    InputSpec,
    Method,
    Model,
    Objective,
    Reported,
    Split,
    Task,
)
from msabench.data import MMSADataset, check_file, data_root, mmsa_data, read_pickle, sha256, write_pickle
from msabench.errors import CatalogError, DataError, MsabenchError, PluginError, TrainingError, UnknownName
from msabench.hookspecs import hookimpl
from msabench.metrics import evaluate
from msabench.plugins import get_plugin_manager
from msabench.protocol import PROTOCOL, Protocol
from msabench.results import RunResult, write_atomic
from msabench.train import Callback, Run, fit

__all__ = [
    "PROTOCOL",
    "Batch",
    "Callback",
    "Catalog",
    "CatalogError",
    "Data",
    "DataError",
    "Dataset",
    "Encoder",
    "Fusion",
    "InputSpec",
    "MMSADataset",
    "Method",
    "Model",
    "MsabenchError",
    "Objective",
    "PluginError",
    "Protocol",
    "Reported",
    "Run",
    "RunResult",
    "Split",
    "Task",
    "TrainingError",
    "UnknownName",
    "__version__",
    "check_file",
    "data_root",
    "evaluate",
    "fit",
    "get_plugin_manager",
    "hookimpl",
    "mmsa_data",
    "read_pickle",
    "sha256",
    "write_atomic",
    "write_pickle",
]
