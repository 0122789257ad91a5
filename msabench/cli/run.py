"""`msabench run`: train a method on a dataset under the protocol."""

from __future__ import annotations

import os

import click

from msabench.cli import options, show_logs
from msabench.cli.options import request, run_flags


@click.command(name="run")
@run_flags
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (settings with their sources, what each unit would do); train nothing.",
)
@click.option("--tuned", hidden=True, help="The summary.json of the sweep that chose these settings (msabench sweep).")
def command(dry_run, progress, quiet, **flags):
    """Train and test a method on a dataset, one result file per seed, then render its leaderboard.

    A seed whose result exists for the same data, hyper-parameters and protocol is skipped; one that
    was interrupted continues after its last finished epoch. A multi-stage method first runs (or
    reuses) its earlier stages for each seed, then starts its encoders from their checkpoints. Under
    `torchrun --nproc-per-node N -m msabench run`, the N processes train each run together (DDP) and rank 0
    writes its result.
    """
    from msabench import api
    from msabench.leaderboard import table

    show_logs(quiet)
    plan = api.plan(request(flags), catalog=options.load_catalog())
    if dry_run:
        click.echo(plan.describe())
        return
    results = api.execute(plan, progress=progress)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        click.echo(table(results))
