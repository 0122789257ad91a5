"""`msabench data`: inspect, verify or generate a dataset's files."""

from __future__ import annotations

import inspect
import json
import logging

import click

from msabench.cli import options
from msabench.cli.options import DATA_ROOT


@click.group(name="data")
def command():
    """Inspect, verify or generate dataset files."""


@command.command()
@click.argument("dataset")
@DATA_ROOT
def info(dataset, data_root):
    """What a dataset holds and where its files go."""
    cls = options.load_catalog().datasets[dataset]
    instance = cls(data_root)
    task = cls.task
    about = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    click.echo(f"{cls.name}: {about}")
    labels = f", classes: {', '.join(task.classes)}" if task.classes else f", labels in {list(task.label_range)}"
    click.echo(f"  task:     {task.kind}, metrics: {task.family}{labels}")
    click.echo(f"  inputs:   {', '.join(cls.inputs)}; labels: {', '.join(cls.labels)}")
    if cls.dims:
        click.echo(f"  dims:     {', '.join(f'{k} {v}' for k, v in cls.dims.items())}")
    if getattr(cls, "sizes", None):
        click.echo(f"  splits:   {', '.join(f'{k} {v}' for k, v in cls.sizes.items())}")
    click.echo(f"  language: {cls.language}; synthetic: {'yes' if cls.synthetic else 'no'}")
    folder = getattr(instance, "directory", instance.root)  # image-text datasets keep their files in a subfolder
    unpublished = "none published"
    if "sha256" in inspect.signature(cls).parameters:  # the dataset takes the digest of a file the user trusts
        unpublished += " (pass --data-option sha256=HEX to pin the file you trust)"
    for relative, digest in cls.files.items():
        path = folder / relative
        present = "present" if path.is_file() else "missing"
        published = digest or unpublished
        click.echo(f"  file:     {path} ({present}); published SHA-256: {published}")
    click.echo(f"  source:   {cls.source}")


@command.command()
@click.argument("dataset")
@DATA_ROOT
def verify(dataset, data_root):
    """Check a dataset's files against their published SHA-256 and load them."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    loaded = options.load_catalog().datasets[dataset](data_root, verify=True).load()
    sizes = ", ".join(f"{name} {len(split)}" for name, split in loaded.splits.items())
    state = "verified" if loaded.provenance.get("verified") else "NOT verified (no published SHA-256)"
    click.echo(f"{dataset}: {state}; splits {sizes}; files {json.dumps(loaded.provenance.get('files', {}))}")


@command.command()
@click.argument("dataset")
@DATA_ROOT
def synth(dataset, data_root):
    """Write a synthetic dataset's pickle under the data root, in MMSA's layout."""
    from msabench.results import write_atomic

    cls = options.load_catalog().datasets[dataset]
    if not cls.synthetic or not hasattr(cls, "pickled"):
        raise click.ClickException(f"{dataset} is not a synthetic dataset in MMSA's layout; try synthetic-mosi.")
    instance = cls(data_root)
    ((relative, _),) = cls.files.items()
    write_atomic(instance.root / relative, instance.pickled())
    click.echo(
        f"wrote {instance.root / relative}; "
        f"`msabench run --dataset {dataset} --data-root {instance.root} ...` now reads it"
    )
