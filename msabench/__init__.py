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
    **dict.fromkeys(["EMOTIONS", "evaluate", "mmsa_reported"], "metrics"),
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
        [
            "MMSADataset", "MulTDataset", "check_file", "flag", "mmsa_data", "mult_data", "read_pickle", "sha256",
            "whole", "write_pickle",
        ],
        "data",
    ),
    **dict.fromkeys(["decode_text", "open_image"], "decode"),
    **dict.fromkeys(["read_split_file", "stratified_split"], "splits"),
    **dict.fromkeys(["ImageTextDataset", "Sample", "read_samples", "split_tensors"], "imagetext"),
    **dict.fromkeys(["SyntheticImageText", "SyntheticMMSA", "SyntheticMulT"], "synthetic"),
    **dict.fromkeys(
        [
            "CrossmodalLayer", "CrossmodalTransformer", "Frames", "PackedLSTM", "align_to_text", "attend",
            "dropped_attention",
            "full_length", "last_step", "length_mask", "masked_mean", "mult_causal_mask", "pool_to", "pooled_lengths",
            "sinusoidal_positions",
        ],
        "layers",
    ),
    "Catalog": "catalog",
    "load_pretrained": "core.pretrained",  # the core plugin's loader of transformers weights, for plugins' own models
    "get_plugin_manager": "plugins",
    **dict.fromkeys(["Run", "fit"], "train"),
}  # fmt: skip

__all__ = [
    "__version__",
    "Batch",
    "Callback",
    "Catalog",
    "CatalogError",
    "CrossmodalLayer",
    "CrossmodalTransformer",
    "Data",
    "DataError",
    "Dataset",
    "EMOTIONS",
    "Encoder",
    "Frames",
    "Fusion",
    "ImageTextDataset",
    "InputSpec",
    "MMSADataset",
    "Method",
    "Model",
    "MsabenchError",
    "MulTDataset",
    "Objective",
    "PROTOCOL",
    "PackedLSTM",
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
    "SyntheticMulT",
    "Task",
    "TrainingError",
    "UnknownName",
    "align_to_text",
    "attend",
    "check_file",
    "data_root",
    "decode_text",
    "dropped_attention",
    "evaluate",
    "fit",
    "flag",
    "full_length",
    "get_plugin_manager",
    "hookimpl",
    "last_step",
    "load_pretrained",
    "length_mask",
    "masked_mean",
    "mmsa_data",
    "mmsa_reported",
    "mult_causal_mask",
    "mult_data",
    "open_image",
    "pool_to",
    "pooled_lengths",
    "read_pickle",
    "read_samples",
    "read_split_file",
    "sha256",
    "sinusoidal_positions",
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
    from msabench.core.pretrained import load_pretrained
    from msabench.data import (
        MMSADataset,
        MulTDataset,
        check_file,
        flag,
        mmsa_data,
        mult_data,
        read_pickle,
        sha256,
        whole,
        write_pickle,
    )
    from msabench.decode import decode_text, open_image
    from msabench.errors import CatalogError, DataError, MsabenchError, PluginError, TrainingError, UnknownName
    from msabench.hookspecs import hookimpl
    from msabench.imagetext import ImageTextDataset, Sample, read_samples, split_tensors
    from msabench.layers import (
        CrossmodalLayer,
        CrossmodalTransformer,
        Frames,
        PackedLSTM,
        align_to_text,
        attend,
        dropped_attention,
        full_length,
        last_step,
        length_mask,
        masked_mean,
        mult_causal_mask,
        pool_to,
        pooled_lengths,
        sinusoidal_positions,
    )
    from msabench.metrics import EMOTIONS, evaluate, mmsa_reported
    from msabench.paths import data_root
    from msabench.plugins import get_plugin_manager
    from msabench.protocol import PROTOCOL, Protocol
    from msabench.results import RunResult, write_atomic
    from msabench.splits import read_split_file, stratified_split
    from msabench.synthetic import SyntheticImageText, SyntheticMMSA, SyntheticMulT
    from msabench.train import Run, fit
