"""`msabench robustness`: a trained run's test split under corrupted and missing inputs."""

from __future__ import annotations

import logging
import time

import click

from msabench.cli import options
from msabench.cli.options import DATA_ROOT, DEVICE, values


@click.command(name="robustness")
@click.option(
    "--run",
    "run_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A result JSON with its checkpoint .pt beside it.",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False),
    help="A late-fusion run (result JSON + .pt) on the same dataset and seed, for effective robustness.",
)
@DATA_ROOT
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE", help="As the run used (repeatable).")
@DEVICE
@click.option(
    "--corruptions",
    type=click.Choice(["multibench", "msabench"]),
    default="multibench",
    show_default=True,
    help="multibench: MultiBench's definitions; msabench: msabench's finer-grained ones (see msabench.corruptions).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch. [default: the run's (hardware.torch_threads), so the clean metrics match it]",
)
@click.option(
    "--plot/--no-plot", default=True, show_default=True, help="Also draw the curves as PNG beside the report."
)
def command(run_path, reference, data_root, data_options, device, corruptions, threads, plot):
    """Evaluate a trained run on its test split under corrupted and missing inputs (MultiBench's protocol)."""
    from msabench.inference import load_run
    from msabench.options import dataset_options
    from msabench.robustness import measure, report_path, summary, write

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    found = options.load_catalog()
    checkpoint, _ = load_run(run_path)
    chosen = dataset_options(found.datasets[checkpoint["dataset"]], values(data_options, "--data-option"), host=False)
    started = time.perf_counter()
    report = measure(
        run_path,
        found,
        data_root=data_root,
        data_options=chosen,
        device=device,
        reference=reference,
        corruptions=corruptions,
        threads=threads,
    )
    path = write(report, report_path(run_path, corruptions))
    click.echo(summary(report))
    if plot:
        from msabench.plot import robustness_curves, save

        save(robustness_curves(report), str(path).removesuffix(".json"), ("png",))
    click.echo(
        f"wrote {path}" + (" and its .png" if plot else "") + f" ({time.perf_counter() - started:.0f} s)", err=True
    )
