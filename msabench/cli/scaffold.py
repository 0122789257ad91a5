"""`msabench new-plugin`: start an out-of-tree plugin package that works before it is edited."""

from __future__ import annotations

import click


@click.command(name="new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the package folder (msabench-NAME) is written.",
)
def command(name, directory):
    """Write a plugin package NAME (kebab-case): entry point NAME, distribution msabench-NAME, package msabench_NAME,
    with a method, a fusion, an objective, the conformance test and a README."""
    from msabench.scaffold import new_plugin

    folder = new_plugin(name, directory)
    click.echo(f"wrote {folder}")
    click.echo(
        f"next: pip install -e {folder} && msabench check {name} && msabench run --method {name} "
        "--dataset synthetic-mosi --seeds 1111"
    )
