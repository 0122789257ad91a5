"""What a plugin can add to msabench. Each hook gets `register`; call it once per thing you add."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from msabench.components import Dataset, Encoder, Fusion, Method, Objective

hookspec = HookspecMarker("msabench")
hookimpl = HookimplMarker("msabench")


@hookspec
def register_datasets(register: Callable[[type[Dataset]], None]) -> None:
    """Register Dataset subclasses, such as CMU-MOSI.

    :param register: call ``register(MyDataset)`` once per class; ``MyDataset.name`` is its id.

    Added in 0.1.
    """


@hookspec
def register_encoders(register: Callable[[type[Encoder]], None]) -> None:
    """Register Encoder subclasses, each turning one input (token ids, a feature sequence, pixels) into features.

    :param register: call ``register(MyEncoder)`` once per class; ``MyEncoder.name`` is its id.

    Added in 0.1.
    """


@hookspec
def register_fusions(register: Callable[[type[Fusion]], None]) -> None:
    """Register Fusion subclasses, each combining per-modality features into the model's outputs.

    :param register: call ``register(MyFusion)`` once per class; ``MyFusion.name`` is its id.

    Added in 0.1.
    """


@hookspec
def register_objectives(register: Callable[[type[Objective]], None]) -> None:
    """Register Objective subclasses, each turning model outputs and labels into named losses.

    :param register: call ``register(MyObjective)`` once per class; ``MyObjective.name`` is its id.

    Added in 0.1.
    """


@hookspec
def register_methods(register: Callable[[Method], None]) -> None:
    """Register Method recipes: one per paper variant, naming its encoders, fusion and objective by id.

    :param register: call ``register(Method(...))`` once per recipe; ``Method.name`` is the leaderboard row.

    Added in 0.1.
    """
