"""The `msabench` command: one module per command, each parse -> `msabench.api` -> print.

Only click is imported up front, and a built-in command's module only when that command runs, so
``msabench run --help`` does not pay for torch. Plugins add commands through the ``register_commands`` hook;
the plugins are loaded for those only when a name is not a built-in command (or every command is listed).
"""

from __future__ import annotations

import importlib
import logging

import click

from msabench.errors import MsabenchError

# command -> the module under msabench.cli that defines it (as `command`)
BUILTIN = {
    "run": "run",
    "sweep": "sweep",
    "list": "listing",
    "plugins": "plugins",
    "leaderboard": "leaderboard",
    "results": "results",
    "plot": "plot",
    "robustness": "robustness",
    "check": "check",
    "data": "data",
    "new-plugin": "scaffold",
    "verify": "verify",
    "site": "site",
    "docs": "docs",
    "reproduce": "reproduce",
}


class Group(click.Group):
    """The built-in commands, each module loaded on first use, then the plugins' (`register_commands`, loaded only
    when a name is not built in or every command is listed); msabench's own errors print as one line
    (``Error: ...``), not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN, *plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILTIN:
            return importlib.import_module(f"msabench.cli.{BUILTIN[name]}").command
        return plugin_commands(ctx).get(name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MsabenchError as error:
            raise click.ClickException(str(error)) from error


def plugin_commands(ctx: click.Context) -> dict[str, click.Command]:
    """The installed plugins' commands, gathered once per invocation (each problem printed as a warning)."""
    meta = ctx.find_root().meta
    if "msabench.commands" not in meta:
        from msabench.plugins import commands, get_plugin_manager

        found, problems = commands(get_plugin_manager(), reserved=tuple(BUILTIN))
        for problem in problems:
            click.echo(f"Warning: {problem.message}", err=True)
        meta["msabench.commands"] = {name: command for name, (_, command) in found.items()}
    return meta["msabench.commands"]


class Echo(logging.Handler):
    """msabench's log messages on the terminal's (or the test runner's) standard error."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def show_logs(quiet: bool = False) -> None:
    """Print msabench's messages on standard error, one line each: progress and outcomes, or with `quiet` only each
    unit's outcome (trained, skipped) and warnings."""
    logger = logging.getLogger("msabench")
    for handler in [h for h in logger.handlers if isinstance(h, Echo)]:
        logger.removeHandler(handler)
    logger.addHandler(Echo())
    logger.setLevel(25 if quiet else logging.INFO)  # 25: msabench.store.NOTICE
    logger.propagate = False


@click.group(cls=Group)
@click.version_option(package_name="msabench")
def cli() -> None:
    """msabench: benchmark multimodal sentiment analysis methods under one protocol."""


def main() -> None:
    cli(prog_name="msabench")
