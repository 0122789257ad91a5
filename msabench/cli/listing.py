"""`msabench list`: what the installed plugins register."""

from __future__ import annotations

import click

from msabench.cli import options

KINDS = ("datasets", "encoders", "fusions", "objectives", "methods")


@click.command(name="list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
def command(kind):
    """List what the installed plugins register (and what cannot be used, and why)."""
    found = options.load_catalog()
    for name in [kind] if kind else KINDS:
        registry = found.registries[name]
        click.echo(f"{name}:")
        for item in registry:
            obj = registry[item]
            if name == "methods":
                parts = ", ".join(f"{m}={e}" for m, e in obj.encoders.items())
                about = f"{obj.paper} | {parts} | fusion={obj.fusion} | objective={obj.objective}"
                if obj.stages:
                    about += " | stages: " + ", ".join(f"{s.modality}<-{s.method}" for s in obj.stages)
            else:
                about = (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""
            click.echo(f"  {item:<22} [{registry.plugin(item)}] {about}")
        for item, why in sorted(registry.unusable.items()):
            click.echo(f"  {item:<22} UNUSABLE: {why}")
