"""The `msabench` command: run, list, plugins, leaderboard, check, predict, data.

Only click is imported up front; each command imports what it needs, so `msabench --help` does not
pay for torch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from msabench.errors import MsabenchError

if TYPE_CHECKING:
    from msabench.catalog import Catalog

KINDS = ("datasets", "encoders", "fusions", "objectives", "methods")
SEED_LIMIT = 2**32


class Group(click.Group):
    """Prints msabench's own errors as one line (`Error: ...`), not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MsabenchError as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=Group)
@click.version_option(package_name="msabench")
def cli() -> None:
    """msabench: benchmark multimodal sentiment analysis methods under one protocol."""


def load_catalog() -> Catalog:
    """Every installed plugin's components; each plugin problem is printed once, as a warning."""
    from msabench.catalog import Catalog
    from msabench.plugins import get_plugin_manager

    catalog = Catalog.from_plugins(get_plugin_manager())
    for problem in catalog.problems:
        click.echo(f"Warning: {problem.message}", err=True)
    return catalog


def assignments(values: tuple[str, ...], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key or not item:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=flag)
        pairs[key.strip()] = item.strip()
    return pairs


def json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string, e.g. a path


def parse_seeds(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated seeds: whole numbers in [0, 2**32), each once."""
    if not text:
        return default
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated whole numbers such as 1111,1112; got {text!r}", param_hint="--seeds"
        ) from None
    if bad := [seed for seed in seeds if not 0 <= seed < SEED_LIMIT]:
        raise click.BadParameter(
            f"seeds must lie in 0..{SEED_LIMIT - 1} (torch's range); got {bad[0]}", param_hint="--seeds"
        )
    if len(set(seeds)) != len(seeds):
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        raise click.BadParameter(f"seed {repeated[0]} is given twice; each seed runs once", param_hint="--seeds")
    return seeds


def shown(value: Any) -> str:
    """How a changed value appears in a row label: JSON, with a long path cut to its file name and a short hash."""
    text = json.dumps(value)
    if isinstance(value, str) and "/" in value and len(text) > 32:
        return f"{Path(value).name}~{hashlib.sha256(value.encode()).hexdigest()[:6]}"
    return text


@cli.command()
@click.option("--method", "-m", required=True, help="Method id (see `msabench list methods`).")
@click.option("--dataset", "-d", required=True, help="Dataset id (see `msabench list datasets`).")
@click.option("--seeds", help="Comma-separated seeds. [default: the protocol's 1111-1115]")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    help="Folder with MMSA's layout. [default: $MSABENCH_DATA or ~/.local/share/msabench/data]",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Use data files whose SHA-256 does not match the published one (results are marked unverified).",
)
@click.option(
    "--results",
    "results_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where result JSON files go.",
)
@click.option(
    "--leaderboards",
    "boards_dir",
    default="leaderboards",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the dataset's Markdown leaderboard is rendered.",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch. [default: 1, whatever the machine: the count changes the numbers]",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    help="Cap epochs at N instead of the protocol's 100 (another protocol id: rows are ranked apart).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    help="Stop after N epochs without improvement instead of the protocol's 8, e.g. a paper's own early stopping "
    "(another protocol id: rows are ranked apart).",
)
@click.option(
    "--encoder",
    "encoders",
    multiple=True,
    metavar="MODALITY=NAME",
    help="Swap an encoder, e.g. text=lstm-text (repeatable).",
)
@click.option("--objective", help="Swap the objective, e.g. l1.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a hyper-parameter, e.g. train.lr=1e-4 (JSON values; repeatable).",
)
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option, e.g. skip_unreadable=true or split_file=PATH (repeatable; part of the row's variant).",
)
@click.option("--overwrite", is_flag=True, help="Retrain seeds whose result exists (and discard resume states).")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar per epoch (on a terminal)."
)
@click.option(
    "--checkpoints/--no-checkpoints",
    default=True,
    show_default=True,
    help="Save each seed's selected weights beside its result.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only print the results.")
def run(
    method,
    dataset,
    seeds,
    data_root,
    no_verify,
    results_dir,
    boards_dir,
    device,
    threads,
    max_epochs,
    patience,
    encoders,
    objective,
    sets,
    data_options,
    overwrite,
    progress,
    checkpoints,
    quiet,
):
    """Train and test a method on a dataset, one result file per seed, then render its leaderboard.

    A seed whose result exists for the same data, hyper-parameters and protocol is skipped; one that
    was interrupted continues after its last finished epoch.
    """
    from msabench import leaderboard as boards
    from msabench.components import merge
    from msabench.protocol import PROTOCOL, Protocol
    from msabench.results import RunResult, differences, load_results, result_path, resume_path, write_atomic
    from msabench.train import fit, resolve_hparams, select_device, set_threads

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    changed = {key: value for key, value in (("max_epochs", max_epochs), ("patience", patience)) if value}
    protocol = Protocol(**changed) if changed else PROTOCOL
    seed_list = parse_seeds(seeds, protocol.seeds)
    chosen_device = select_device(device)
    found = load_catalog()
    recipe = found.methods[method].for_dataset(found.datasets[dataset])  # its encoders for this dataset, if any
    swaps = assignments(encoders, "--encoder")
    for modality, name in swaps.items():
        found.encoders[name]  # unknown names fail here, with suggestions
        if modality not in recipe.encoders:
            raise click.BadParameter(
                f"{method} has no {modality!r} encoder; it has {', '.join(recipe.encoders)}", param_hint="--encoder"
            )
    if objective:
        found.objectives[objective]
    recipe = recipe.with_components(swaps, objective) if swaps or objective else recipe
    dataset_cls = found.datasets[dataset]
    found.check(recipe, dataset_cls)
    overrides: dict[str, Any] = {}
    for key, value in assignments(sets, "--set").items():
        section, dot, name = key.partition(".")
        if not dot:
            raise click.BadParameter(f"{key!r} needs a section, e.g. train.{key}", param_hint="--set")
        merge(overrides, {section: {name: json_or_text(value)}})
    hparams = merge(recipe.hparams_for(dataset_cls), overrides)
    found.check_hparams(recipe, hparams)
    options = dataset_options(dataset_cls, data_options)
    changes = [f"{m}={n}" for m, n in sorted(swaps.items())] + ([f"objective={objective}"] if objective else [])
    changes += sorted(
        f"{section}.{key}={shown(value)}" for section, values in overrides.items() for key, value in values.items()
    )
    changes += sorted(f"data.{key}={shown(value)}" for key, value in options.items())
    variant = ", ".join(changes)  # sorted: the same changes in any flag order are one row
    set_threads(threads)

    data = dataset_cls(data_root, verify=not no_verify, **options).load()
    results = []
    for seed in seed_list:
        path = result_path(results_dir, dataset, recipe.name, seed, variant, protocol=protocol.id)
        state = resume_path(path)
        planned = resolve_hparams(hparams, data, seed, protocol, results_dir)
        if overwrite:
            for leftover in (path, path.with_suffix(".pt"), state):
                leftover.unlink(missing_ok=True)
        elif path.is_file():
            existing = RunResult.load(path)
            if changed := differences(existing, data=data.provenance, hparams=planned, protocol=protocol.to_dict()):
                raise click.ClickException(
                    f"seed {seed}: {path} holds a result of another run ({'; '.join(changed[:3])}). Pass --overwrite "
                    "to replace it, or --results DIR to keep both."
                )
            click.echo(f"seed {seed}: done already ({path}); skipped. Pass --overwrite to train it again.", err=True)
            results.append(existing)
            continue
        result = fit(
            recipe,
            data,
            catalog=found,
            seed=seed,
            protocol=protocol,
            hparams=planned,
            variant=variant,
            device=chosen_device,
            checkpoint=path.with_suffix(".pt") if checkpoints else None,
            state=state,
            progress=progress,
        )
        result.save(path)
        results.append(result)
        summary = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        click.echo(f"seed {seed}: best epoch {result.best_epoch}/{result.epochs}  {summary}  -> {path}", err=True)
    page = boards.render_dataset(dataset, [r for r in load_results(results_dir) if r.dataset == dataset])
    write_atomic(Path(boards_dir) / f"{dataset}.md", page)
    click.echo(boards.table(results))
    click.echo(f"\nLeaderboard: {Path(boards_dir) / f'{dataset}.md'}", err=True)


def dataset_options(dataset_cls, values: tuple[str, ...]) -> dict:
    """--data-option KEY=VALUE pairs (JSON values) checked against the dataset class's keyword arguments."""
    options = {key: json_or_text(value) for key, value in assignments(values, "--data-option").items()}
    parameters = inspect.signature(dataset_cls).parameters.items()
    accepted = [name for name, p in parameters if p.kind == p.KEYWORD_ONLY and name != "verify"]
    if unknown := sorted(set(options) - set(accepted)):
        raise click.BadParameter(
            f"{dataset_cls.name} has no option {', '.join(unknown)}; it accepts: {', '.join(accepted) or 'none'}",
            param_hint="--data-option",
        )
    return options


@cli.command(name="list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
def list_(kind):
    """List what the installed plugins register (and what cannot be used, and why)."""
    found = load_catalog()
    for name in [kind] if kind else KINDS:
        registry = found.registries[name]
        click.echo(f"{name}:")
        for item in registry:
            obj = registry[item]
            if name == "methods":
                parts = ", ".join(f"{m}={e}" for m, e in obj.encoders.items())
                about = f"{obj.paper} | {parts} | fusion={obj.fusion} | objective={obj.objective}"
            else:
                about = (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""
            click.echo(f"  {item:<22} [{registry.plugin(item)}] {about}")
        for item, why in sorted(registry.unusable.items()):
            click.echo(f"  {item:<22} UNUSABLE: {why}")


@cli.command()
def plugins():
    """Show installed plugins, their distributions and hooks (JSON)."""
    from msabench.plugins import get_plugin_manager, get_plugins

    pm = get_plugin_manager()
    for problem in pm.problems:
        click.echo(f"Warning: {problem.message}", err=True)
    click.echo(json.dumps(get_plugins(pm), indent=2))


@cli.command(name="leaderboard")
@click.option(
    "--results",
    "results_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of result JSON files.",
)
@click.option(
    "--out",
    "out_dir",
    default="leaderboards",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for <dataset>.md files.",
)
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a Markdown file is missing or stale.")
def leaderboard_(results_dir, out_dir, datasets, check):
    """Render one Markdown leaderboard per dataset from result files."""
    from msabench import leaderboard as boards
    from msabench.results import load_results, write_atomic

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    pages = boards.render(load_results(results_dir))
    if not pages:
        raise click.ClickException(f"no result files (seed-*.json) under {results_dir}.")
    if missing := [name for name in datasets if name not in pages]:
        raise click.ClickException(
            f"no results for {', '.join(missing)} under {results_dir}; results cover {', '.join(pages)}."
        )
    if datasets:
        pages = {name: page for name, page in pages.items() if name in datasets}
    stale = []
    for name, page in pages.items():
        path = Path(out_dir) / f"{name}.md"
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != page:
                stale.append(str(path))
        else:
            write_atomic(path, page)
            click.echo(f"wrote {path}")
    if check and not datasets:  # a page whose results are gone is stale too
        stale += sorted(
            str(path)
            for path in Path(out_dir).glob("*.md")
            if path.stem not in pages and path.read_text(encoding="utf-8").startswith("# Leaderboard: ")
        )
    if stale:
        raise click.ClickException(
            f"stale leaderboards: {', '.join(stale)}. "
            f"Regenerate with: msabench leaderboard --results {results_dir} --out {out_dir}"
        )
    if check:
        click.echo(f"{len(pages)} leaderboards up to date")


@cli.command()
@click.argument("plugin")
def check(plugin):
    """Run the conformance kit on an installed plugin (entry-point or distribution name)."""
    from msabench.testing import run_checks

    failures = 0
    for name, error in run_checks(plugin):
        click.echo(f"{'PASS' if error is None else 'FAIL'}  {name}" + (f"\n      {error}" if error else ""))
        failures += error is not None
    if failures:
        raise click.ClickException(f"{failures} check(s) failed for {plugin}")


@cli.command()
@click.option(
    "--run",
    "run_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A result JSON (with its checkpoint .pt beside it) or a checkpoint .pt.",
)
@click.option("--dataset", "-d", help="Dataset id whose unlabelled inputs to label. [default: the run's dataset]")
@click.option(
    "--data-root", type=click.Path(file_okay=False), help="[default: $MSABENCH_DATA or ~/.local/share/msabench/data]"
)
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option, e.g. skip_unreadable=true (unreadable samples are then written as null).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where the predictions go, in the dataset's own format (Lab5: guid,tag).",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
def predict(run_path, dataset, data_root, data_options, out, device):
    """Label a dataset's unlabelled inputs (Lab5: test_without_label.txt) with a trained run's checkpoint."""
    from msabench.inference import load_run
    from msabench.inference import predict as label

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    found = load_catalog()
    checkpoint, result = load_run(run_path)
    dataset_cls = found.datasets[dataset or checkpoint.get("dataset")]
    instance = dataset_cls(data_root, **dataset_options(dataset_cls, data_options))
    predictions = label(checkpoint, result, instance, found, device=device)
    instance.write_predictions(out, predictions.ids, predictions.labels)
    skipped = getattr(instance, "skipped_unlabelled", {}).get("count", 0)
    click.echo(
        f"wrote {len(predictions.ids)} predictions of {predictions.method} (seed {predictions.seed}) to {out}"
        + (f"; {skipped} unreadable samples written as null" if skipped else "")
        + f"; evaluation batch size {predictions.batch_size}",
        err=True,
    )


@cli.group()
def data():
    """Inspect, verify or generate dataset files."""


data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False), help="[default: $MSABENCH_DATA or ~/.local/share/msabench/data]"
)


@data.command()
@click.argument("dataset")
@data_root_option
def info(dataset, data_root):
    """What a dataset holds and where its files go."""
    cls = load_catalog().datasets[dataset]
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
    for relative, digest in cls.files.items():
        present = "present" if (instance.root / relative).is_file() else "missing"
        published = digest or "none published (pass --data-option sha256=... where the dataset accepts it)"
        click.echo(f"  file:     {instance.root / relative} ({present}); published SHA-256: {published}")
    click.echo(f"  source:   {cls.source}")


@data.command()
@click.argument("dataset")
@data_root_option
def verify(dataset, data_root):
    """Check a dataset's files against their published SHA-256 and load them."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    loaded = load_catalog().datasets[dataset](data_root, verify=True).load()
    sizes = ", ".join(f"{name} {len(split)}" for name, split in loaded.splits.items())
    state = "verified" if loaded.provenance.get("verified") else "NOT verified (no published SHA-256)"
    click.echo(f"{dataset}: {state}; splits {sizes}; files {json.dumps(loaded.provenance.get('files', {}))}")


@data.command()
@click.argument("dataset")
@data_root_option
def synth(dataset, data_root):
    """Write a synthetic dataset's pickle under the data root, in MMSA's layout."""
    from msabench.results import write_atomic

    cls = load_catalog().datasets[dataset]
    if not cls.synthetic or not hasattr(cls, "pickled"):
        raise click.ClickException(f"{dataset} is not a synthetic dataset in MMSA's layout; try synthetic-mosi.")
    instance = cls(data_root)
    ((relative, _),) = cls.files.items()
    write_atomic(instance.root / relative, instance.pickled())
    click.echo(
        f"wrote {instance.root / relative}; `msabench run --dataset {dataset} --data-root {instance.root} ...` now reads it"
    )
