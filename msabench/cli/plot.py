"""`msabench plot`: training curves, leaderboard charts and robustness curves from result files."""

from __future__ import annotations

from pathlib import Path

import click

from msabench.cli.options import DATASETS, RESULTS


@click.command(name="plot")
@RESULTS
@click.option(
    "--out", "out_dir", default="plots", show_default=True, type=click.Path(file_okay=False), help="Where charts go."
)
@DATASETS
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["curves", "leaderboard", "robustness"]),
    help="What to draw (repeatable). [default: all three]",
)
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(["png", "svg"]), help="Repeatable. [default: png and svg]"
)
def command(results_dir, out_dir, datasets, kinds, formats):
    """Draw training curves per run, a leaderboard chart per dataset and robustness curves, from result files."""
    from msabench import api
    from msabench.cli import show_logs

    show_logs(quiet=True)  # each invalid result file is a warning
    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    written = api.draw_plots(
        results_dir,
        out_dir,
        datasets=datasets,
        kinds=kinds or ("curves", "leaderboard", "robustness"),
        formats=formats or ("png", "svg"),
    )
    click.echo(f"wrote {len(written)} files under {out_dir}", err=True)
