"""`msabench sweep`: tune hyper-parameters on validation with Ray Tune, then run the chosen ones."""

from __future__ import annotations

from dataclasses import replace

import click

from msabench.cli import options, show_logs
from msabench.cli.options import json_or_text, request, run_flags, seeds


@click.command(name="sweep")
@run_flags
@click.option(
    "--grid",
    "grids",
    multiple=True,
    required=True,
    metavar="SECTION.KEY=V1,V2,...",
    help="A hyper-parameter and the values to try, e.g. train.lr=1e-3,3e-4 (repeatable: the grid is their product; "
    "a JSON list, e.g. 'fusion.hidden=[[64,32],[128]]', for values with commas).",
)
@click.option(
    "--samples",
    type=int,
    help="Random search: train N configurations drawn from the grid (seeded, without replacement). [default: all]",
)
@click.option("--search-seed", default=0, show_default=True, type=int, help="Seed of the random search's draw.")
@click.option("--trial-seeds", help="Seeds each configuration trains with. [default: the first of --seeds]")
@click.option(
    "--address",
    help="A Ray cluster: ray://HEAD:10001 (Ray Client), or auto / HEAD:6379 when run on a cluster node. "
    "[default: a local Ray with this machine's CPUs and GPUs]",
)
@click.option(
    "--cpus-per-trial",
    type=click.IntRange(min=1),
    help="CPUs (and torch threads) per trial. [default: --threads, else 1]",
)
@click.option(
    "--gpus-per-trial",
    type=click.FloatRange(min=0),
    help="GPUs per trial (0.5: two trials share one). [default: 1 where CUDA is present and --device allows, else 0]",
)
@click.option(
    "--max-concurrent", type=click.IntRange(min=1), help="At most N trials at a time. [default: as resources allow]"
)
@click.option(
    "--sweeps",
    "sweeps_dir",
    default="sweeps",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where trials and summaries go.",
)
@click.option("--ray-storage", help="Ray Tune's own files (a shared path or URI on a cluster). [default: in the sweep]")
@click.option("--trials-only", is_flag=True, help="Choose, then stop: do not run the chosen configuration's seeds.")
def command(
    grids,
    samples,
    search_seed,
    trial_seeds,
    address,
    cpus_per_trial,
    gpus_per_trial,
    max_concurrent,
    sweeps_dir,
    ray_storage,
    trials_only,
    progress,
    quiet,
    **flags,
):
    """Tune hyper-parameters on validation with Ray Tune, then run the chosen ones over the protocol's seeds.

    Each configuration of the grid trains and validates as a Ray Tune trial (never tested); the one with the best
    validation selection value is chosen and then run like `msabench run` (same skip and resume rules), each seed
    tested once, as its own leaderboard row marked tuned. Running the same command again resumes: finished trials
    are kept, not rerun.
    """
    from msabench import api, sweep
    from msabench.leaderboard import table
    from msabench.runtime import set_threads

    show_logs(quiet)
    plan = api.plan(request(flags), catalog=options.load_catalog())
    trial_seeds = api.check_seeds(seeds(trial_seeds), plan.seeds[:1])
    gpus = sweep.device_for(plan.request.device, gpus_per_trial)
    axes, configs = sweep.grid(plan, grids, samples, search_seed)
    set_threads(plan.threads)
    data = plan.load()
    summary, path = sweep.tune(
        plan,
        data,
        axes,
        configs,
        seeds=trial_seeds,
        search=sweep.describe_search(axes, configs, search_seed),
        folder=sweeps_dir,
        address=address,
        cpus_per_trial=cpus_per_trial or flags["threads"] or 1,
        gpus_per_trial=gpus,
        max_concurrent=max_concurrent,
        storage=ray_storage,
        quiet=quiet,
    )
    click.echo(sweep.summary_markdown(summary))
    click.echo(f"Sweep summary: {path.with_suffix('.md')}", err=True)
    if trials_only:
        return
    chosen = {key: json_or_text(text) for key, text in summary["chosen"]["config"].items()}
    final = replace(plan.request, sets={**plan.request.sets, **chosen}, tuned=str(path))
    results = api.execute(api.plan(final, catalog=plan.catalog), data=data, progress=progress)
    click.echo(table(results))
