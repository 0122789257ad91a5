"""What a plugin can add to msabench. Each register_* hook gets `register`: call it once per thing you add.
`register_commands` gets the `msabench` command group, to add commands to."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import click

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


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``msabench`` command line (llm's pattern): define them on the group it is given.

    .. code-block:: python

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                "Say hello."
                click.echo("hello")

    A command for only some datasets (a file format of their own, say) belongs in their plugin, not the host.
    ``msabench plugins`` lists each plugin's commands. Import what a command needs inside it, so that
    ``msabench --help`` stays fast.

    :param cli: the ``msabench`` click group.

    Added in 0.2.
    """
