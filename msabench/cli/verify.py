"""`msabench verify`: the gate a submitted results folder passes before it is rendered."""

from __future__ import annotations

import click


@click.command(name="verify")
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option(
    "--rerun",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Train N results again from their recorded request (drawn with --rerun-seed) and compare.",
)
@click.option("--rerun-seed", type=int, default=0, show_default=True, help="Seed of the draw of the results to rerun.")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    help="Where the datasets' files are, to check their hashes and labels. [default: $MSABENCH_DATA or ~/.local/...]",
)
@click.option(
    "--sweeps",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of sweeps behind tuned rows (repeatable). [default: where each result records its sweep]",
)
@click.option("--timeout", type=float, help="Seconds each rerun may take. [default: no limit]")
def command(results_dir, rerun, rerun_seed, data_root, sweeps, timeout):
    """Check a results folder: schema, metrics recomputed from the predictions, versions, data hashes, protocol,
    tuned rows' sweeps, stage files; with --rerun N, N results trained again must match. Exit 1 on any failure."""
    from msabench.verify import verify

    report = verify(
        results_dir,
        rerun=rerun,
        rerun_seed=rerun_seed,
        data_root=data_root,
        sweeps=sweeps,
        timeout=timeout,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(report.text())
    if not report.passed:
        raise SystemExit(1)
