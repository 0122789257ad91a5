"""`msabench reproduce`: every line of a runs file (``method dataset [msabench run flags]``), in parallel."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import click

from msabench.cli import Echo, options, show_logs
from msabench.errors import RequestError


@click.command(name="reproduce")
@click.argument("runs_file", default="leaderboards/runs.txt", type=click.Path(dir_okay=False))
@click.option("--seeds", help="Comma-separated seeds for every line. [default: each line's, else the protocol's]")
@options.RESULTS
@click.option(
    "--leaderboards",
    "boards_dir",
    type=click.Path(file_okay=False),
    help="Where the datasets' pages are rendered, once, at the end. [default: as `msabench run`]",
)
@options.DATA_ROOT
@click.option(
    "--only",
    multiple=True,
    metavar="DATASET|METHOD",
    help="Only the lines of this dataset or method (repeatable).",
)
@click.option("--workers", type=click.IntRange(min=1), help="Units at a time. [default: this machine's CPUs]")
@click.option(
    "--address",
    help="Run the units as Ray tasks: local (start Ray here), auto or HOST:6379 (on a cluster node), or "
    "ray://HEAD:10001. Results are written by the tasks: --results and --logs must be on storage every node sees.",
)
@click.option(
    "--cpus-per-run",
    type=click.FloatRange(min=0, min_open=True),
    help="CPUs Ray reserves per unit. [default: the highest --threads of the lines, 1] Torch uses the line's count.",
)
@click.option(
    "--gpus-per-run",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs per unit on Ray (0.5: two units share one); with any, units train on CUDA.",
)
@click.option(
    "--logs",
    default="logs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Each unit's log, as <logs>/<dataset>/<row>/<protocol>/seed-N.log.",
)
@click.option("--no-checkpoints", is_flag=True, help="Do not keep the final runs' weights (stage runs keep theirs).")
@click.option("--dry-run", is_flag=True, help="Print the units and what each would do; train nothing.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar (on a terminal).")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress lines: each unit's outcome, the pages, the summary and warnings."
)
def command(runs_file, seeds, results_dir, boards_dir, data_root, only, workers, address, cpus_per_run,
            gpus_per_run, logs, no_checkpoints, dry_run, progress, quiet):  # fmt: skip
    """Train every line of RUNS_FILE over its seeds in parallel, then render the leaderboards once.

    Each line is `method dataset [msabench run flags]`, as in leaderboards/runs.txt. Its units (seeds x stages) run in
    worker processes of their own (or as Ray tasks with --address), under `msabench run`'s rules: a finished unit is
    skipped, an interrupted one resumes after its last finished epoch, so running the same command again after a kill
    or a failure trains only what is left. A line whose data is not on this machine is skipped with a message.
    On a Ray cluster, from a node, with the checkout on shared storage:

        msabench reproduce --address auto --results leaderboards/results --leaderboards leaderboards
    """
    from msabench.boards import describe, expand, lines, reproduce

    show_logs(quiet)
    _above_the_bar()
    overrides = {"seeds": seeds, "results_dir": results_dir, "boards_dir": boards_dir}
    names, requests = read_runs(runs_file, overrides, data_root, no_checkpoints, only)
    if dry_run:
        planned = lines(requests, names, catalog=options.load_catalog())
        click.echo(describe(planned, expand(planned)))
        return
    ways = {"workers": workers, "address": address, "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run}
    try:
        report = reproduce(
            requests, names, **ways, logs=logs, progress=progress and not quiet, catalog=options.load_catalog()
        )
    except KeyboardInterrupt:
        click.echo("Interrupted: run the same command again to go on (finished units are kept, the others resume).")
        sys.exit(130)
    click.echo(report.text())
    if report.failed:
        sys.exit(1)


def read_runs(path, overrides, data_root, no_checkpoints, only) -> tuple[list[str], list]:
    """(a name per line, ``runs.txt:N``; its `Request`): each line parsed by `msabench run`'s own options."""
    from msabench.cli.run import command as run

    if not Path(path).is_file():
        raise RequestError(f"no runs file {path}: each line is `method dataset [msabench run flags]`.")
    names, requests, seen = [], [], set()
    for number, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            method, dataset, *flags = shlex.split(text, comments=True)
            context = run.make_context("run", ["--method", method, "--dataset", dataset, *flags])
        except (ValueError, click.ClickException) as error:
            message = error.format_message() if isinstance(error, click.ClickException) else str(error)
            raise RequestError(
                f"{where}: {message.rstrip('.')} (a line is `method dataset [msabench run flags]`)."
            ) from None
        params = {**context.params, **{key: value for key, value in overrides.items() if value is not None}}
        params["data_root"] = params["data_root"] or data_root
        params["checkpoints"] = params["checkpoints"] and not no_checkpoints
        seen |= {method, dataset}
        if not only or {method, dataset} & set(only):
            names.append(where)
            requests.append(options.request(params))
    if unknown := sorted(set(only) - seen):
        raise RequestError(f"--only {unknown[0]}: no line of {path} has that method or dataset.")
    if not requests:
        raise RequestError(f"{path} has no lines to run" + (f" for --only {', '.join(only)}." if only else "."))
    return names, requests


class Above(Echo):
    """Messages printed above the progress bar (tqdm.write), not through it."""

    def emit(self, record) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _above_the_bar() -> None:
    logger = logging.getLogger("msabench")
    for handler in [h for h in logger.handlers if type(h) is Echo]:
        logger.removeHandler(handler)
    logger.addHandler(Above())
