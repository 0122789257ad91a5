"""`msabench plugins`: the installed plugins, their hooks and commands."""

from __future__ import annotations

import json

import click


@click.command(name="plugins")
def command():
    """Show installed plugins: distribution, version, hooks and the commands they add (JSON)."""
    from msabench.cli import BUILTIN
    from msabench.plugins import get_plugin_manager, get_plugins

    pm = get_plugin_manager()
    for problem in pm.problems:
        click.echo(f"Warning: {problem.message}", err=True)
    click.echo(json.dumps(get_plugins(pm, tuple(BUILTIN)), indent=2))
