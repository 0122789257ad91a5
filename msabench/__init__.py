"""msabench: a benchmark harness for multimodal sentiment analysis, extended by pluggy plugins.

The public API is every name in `__all__`; plugins import only from here (``from msabench import
Method, hookimpl``). Names are imported on first use (PEP 562), so ``msabench --help`` does not pay
for torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("msabench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# name -> the module that defines it
_EXPORTS = {
    "hookimpl": "hookspecs",
    **dict.fromkeys(
        ["CatalogError", "DataError", "MsabenchError", "PluginError", "TrainingError", "UnknownName"], "errors"
    ),
    "evaluate": "metrics",
    **dict.fromkeys(["PROTOCOL", "Protocol"], "protocol"),
    **dict.fromkeys(["RunResult", "write_atomic"], "results"),
    "data_root": "paths",
    **dict.fromkeys(
        [
            "Batch", "Callback", "Data", "Dataset", "Encoder", "Fusion", "InputSpec", "Method", "Model", "Objective",
            "Reported", "Split", "Stage", "Task",
        ],
        "components",
    ),
    **dict.fromkeys(
        ["MMSADataset", "check_file", "flag", "mmsa_data", "read_pickle", "sha256", "whole", "write_pickle"], "data"
    ),
    **dict.fromkeys(["decode_text", "open_image"], "decode"),
    **dict.fromkeys(["read_split_file", "stratified_split"], "splits"),
    **dict.fromkeys(["ImageTextDataset", "Sample", "read_samples", "split_tensors"], "imagetext"),
    **dict.fromkeys(["SyntheticImageText", "SyntheticMMSA"], "synthetic"),
    "Catalog": "catalog",
    "get_plugin_manager": "plugins",
    **dict.fromkeys(["Run", "fit"], "train"),
}  # fmt: skip

__all__ = [
    "__version__",
    "Batch",
    "Callback",
    "Catalog",
    "CatalogError",
    "Data",
    "DataError",
    "Dataset",
    "Encoder",
    "Fusion",
    "ImageTextDataset",
    "InputSpec",
    "MMSADataset",
    "Method",
    "Model",
    "MsabenchError",
    "Objective",
    "PROTOCOL",
    "PluginError",
    "Protocol",
    "Reported",
    "Run",
    "RunResult",
    "Sample",
    "Split",
    "Stage",
    "SyntheticImageText",
    "SyntheticMMSA",
    "Task",
    "TrainingError",
    "UnknownName",
    "check_file",
    "data_root",
    "decode_text",
    "evaluate",
    "fit",
    "flag",
    "get_plugin_manager",
    "hookimpl",
    "mmsa_data",
    "open_image",
    "read_pickle",
    "read_samples",
    "read_split_file",
    "sha256",
    "split_tensors",
    "stratified_split",
    "whole",
    "write_atomic",
    "write_pickle",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'msabench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"msabench.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from msabench.catalog import Catalog
    from msabench.components import (
        Batch,
        Callback,
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
        Stage,
        Task,
    )
    from msabench.data import MMSADataset, check_file, flag, mmsa_data, read_pickle, sha256, whole, write_pickle
    from msabench.decode import decode_text, open_image
    from msabench.errors import CatalogError, DataError, MsabenchError, PluginError, TrainingError, UnknownName
    from msabench.hookspecs import hookimpl
    from msabench.imagetext import ImageTextDataset, Sample, read_samples, split_tensors
    from msabench.metrics import evaluate
    from msabench.paths import data_root
    from msabench.plugins import get_plugin_manager
    from msabench.protocol import PROTOCOL, Protocol
    from msabench.results import RunResult, write_atomic
    from msabench.splits import read_split_file, stratified_split
    from msabench.synthetic import SyntheticImageText, SyntheticMMSA
    from msabench.train import Run, fit
