"""`msabench results`: one row per run, as CSV, JSON or Markdown."""

from __future__ import annotations

from pathlib import Path

import click

from msabench.cli.options import DATASETS, RESULTS


@click.command(name="results")
@RESULTS
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "markdown"]), default="csv", show_default=True)
@DATASETS
def command(results_dir, fmt, datasets):
    """One row per run (metrics, epochs, time, memory, flags): `pandas.read_csv` reads the CSV as is."""
    from msabench.cli import show_logs
    from msabench.leaderboard import format_runs
    from msabench.store import valid_results

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    show_logs(quiet=True)
    found = [r for r in valid_results(results_dir) if not datasets or r.dataset in datasets]
    if not found:
        raise click.ClickException(
            f"no result files (seed-*.json) under {results_dir}" + (f" for {', '.join(datasets)}." if datasets else ".")
        )
    click.echo(format_runs(found, fmt), nl=False)
