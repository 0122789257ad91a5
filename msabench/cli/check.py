"""`msabench check`: the conformance kit on an installed plugin."""

from __future__ import annotations

import click


@click.command(name="check")
@click.argument("plugin")
def command(plugin):
    """Run the conformance kit on an installed plugin (entry-point or distribution name)."""
    from msabench.testing import run_checks

    failures = 0
    for name, error in run_checks(plugin):
        click.echo(f"{'PASS' if error is None else 'FAIL'}  {name}" + (f"\n      {error}" if error else ""))
        failures += error is not None
    if failures:
        raise click.ClickException(f"{failures} check(s) failed for {plugin}")
