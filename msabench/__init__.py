"""msabench: a benchmark harness for multimodal sentiment analysis, extended by pluggy plugins.

The public API comes in tiers:

- this package's root (every name in `__all__`): what every plugin needs (``from msabench import Method,
  hookimpl``) and the run API for notebooks and scripts (``msabench.run(...)``, ``msabench.load_results()``);
- four public submodules for plugins that need more: `msabench.layers` (shared model layers),
  `msabench.formats` (dataset files: MMSA and MulT pickles, image-text folders, safe readers),
  `msabench.pretrained` (loading transformers weights, pretrained-encoder helpers) and `msabench.testing`
  (the conformance kit).

Anything else is internal and may change. Names are imported on first use (PEP 562), so ``msabench --help`` does
not pay for torch.
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
    "RunResult": "results",
    "data_root": "paths",
    **dict.fromkeys(
        [
            "Batch", "Callback", "Data", "Dataset", "Encoder", "Fusion", "InputSpec", "Method", "Model", "Objective",
            "Reported", "Split", "Stage", "Task",
        ],
        "components",
    ),
    **dict.fromkeys(["Catalog", "lookup"], "catalog"),
    "get_plugin_manager": "plugins",
    **dict.fromkeys(["Run", "fit"], "train"),
    "Range": "hparams",
    **dict.fromkeys(
        ["Plan", "Request", "draw_plots", "execute", "load_results", "plan", "predict", "render_leaderboards", "run"],
        "api",
    ),
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
    "EMOTIONS",
    "Encoder",
    "Fusion",
    "InputSpec",
    "Method",
    "Model",
    "MsabenchError",
    "Objective",
    "PROTOCOL",
    "Plan",
    "PluginError",
    "Protocol",
    "Range",
    "Reported",
    "Request",
    "Run",
    "RunResult",
    "Split",
    "Stage",
    "Task",
    "TrainingError",
    "UnknownName",
    "data_root",
    "draw_plots",
    "evaluate",
    "execute",
    "fit",
    "get_plugin_manager",
    "hookimpl",
    "load_results",
    "lookup",
    "mmsa_reported",
    "plan",
    "predict",
    "render_leaderboards",
    "run",
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
    from msabench.api import (
        Plan,
        Request,
        draw_plots,
        execute,
        load_results,
        plan,
        predict,
        render_leaderboards,
        run,
    )
    from msabench.catalog import Catalog, lookup
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
    from msabench.errors import CatalogError, DataError, MsabenchError, PluginError, TrainingError, UnknownName
    from msabench.hookspecs import hookimpl
    from msabench.hparams import Range
    from msabench.metrics import EMOTIONS, evaluate, mmsa_reported
    from msabench.paths import data_root
    from msabench.plugins import get_plugin_manager
    from msabench.protocol import PROTOCOL, Protocol
    from msabench.results import RunResult
    from msabench.train import Run, fit
