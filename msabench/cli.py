"""The `msabench` command: run, list, plugins, leaderboard, check, predict, data.

Only click is imported up front; each command imports what it needs, so `msabench --help` does not
pay for torch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from msabench.errors import MsabenchError

if TYPE_CHECKING:
    from msabench.catalog import Catalog
    from msabench.components import Data, Dataset, Method

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


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def torch_barrier() -> None:
    import torch

    torch.distributed.barrier()


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
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="Forward passes through torch.autocast in bf16 or fp16 (fp16: CUDA only, with a gradient scaler); "
    "part of the protocol id.",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    help="Cap epochs at N instead of the protocol's 100 (another protocol id: rows are ranked apart).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    help="Stop after N epochs without a better validation value instead of the protocol's 8 (another protocol id). "
    "With --patience N --max-epochs N every run trains N epochs, a paper's fixed schedule; selection stays on "
    "validation.",
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
    metavar="[STAGE:]SECTION.KEY=VALUE",
    help="Override a hyper-parameter, e.g. train.lr=1e-4 (JSON values; repeatable); STAGE:SECTION.KEY sets one of "
    "a multi-stage method's earlier runs, e.g. lab5-bert:train.lr=3e-5.",
)
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option, e.g. skip_unreadable=true, split_file=PATH or (any dataset) train_fraction=0.1 "
    "(repeatable; part of the row's variant).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Retrain seeds whose result exists, stage runs included (and discard resume states).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar per epoch (on a terminal)."
)
@click.option(
    "--checkpoints/--no-checkpoints",
    default=True,
    show_default=True,
    help="Save each seed's selected weights beside its result (stage runs always keep theirs).",
)
@click.option("--quiet", "-q", is_flag=True, help="Only print the results.")
@click.option("--tuned", hidden=True, help="The summary.json of the sweep that chose these settings (msabench sweep).")
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
    precision,
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
    tuned=None,
):
    """Train and test a method on a dataset, one result file per seed, then render its leaderboard.

    A seed whose result exists for the same data, hyper-parameters and protocol is skipped; one that
    was interrupted continues after its last finished epoch. A multi-stage method first runs (or
    reuses) its earlier stages for each seed, then starts its encoders from their checkpoints. Under
    `torchrun --nproc-per-node N -m msabench run`, the N processes train each run together (DDP) and rank 0
    writes its result.
    """
    from msabench import leaderboard as boards
    from msabench.components import merge
    from msabench.protocol import PROTOCOL
    from msabench.results import RunResult, differences, load_results, result_path, resume_path, write_atomic
    from msabench.train import check_precision, fit, init_distributed, resolve_hparams, select_device, set_threads

    distributed = init_distributed()
    writes = distributed is None or distributed.rank == 0
    logging.basicConfig(level=logging.WARNING if quiet or not writes else logging.INFO, format="%(message)s")
    departures = {key: value for key, value in (("max_epochs", max_epochs), ("patience", patience)) if value}
    protocol = replace(PROTOCOL, precision=precision, **departures)
    seed_list = parse_seeds(seeds, protocol.seeds)
    if distributed is not None and device == "auto" and torch_cuda_available():
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    chosen_device = select_device(device)
    check_precision(precision, chosen_device)
    found = load_catalog()
    plan = resolve_run(found, method, dataset, encoders, objective, sets, data_options, data_root, no_verify)
    recipe, hparams, plans, changes = plan.recipe, plan.hparams, plan.stages, plan.changes
    if tuned:  # a sweep's chosen configuration (msabench sweep passes its summary): its own row, marked tuned
        from msabench.sweep import tuned_record

        tuned = tuned_record(tuned, recipe.name, hparams)
        changes = ["tuned", *changes]
    variant = ", ".join(changes)  # sorted: the same changes in any flag order are one row
    set_threads(threads)

    data = plan.load()

    def one_run(recipe, hparams, variant, seed, *, keep, stages=None, label=""):
        """Run one (method, seed) under the protocol, or reuse its result by the skip rule; (result, path)."""
        where = f"seed {seed}" + (f", stage {label}" if label else "")
        path = result_path(results_dir, data.name, recipe.name, seed, variant, protocol=protocol.id)
        state = resume_path(path)
        planned = resolve_hparams(hparams, data, seed, protocol, results_dir)
        if overwrite:
            for leftover in (path, path.with_suffix(".pt"), state):
                leftover.unlink(missing_ok=True)
        elif path.is_file():
            existing = RunResult.load(path)
            if changed := differences(
                existing, data=data.provenance, hparams=planned, protocol=protocol.to_dict(), stages=stages
            ):
                raise click.ClickException(
                    f"{where}: {path} holds a result of another run ({'; '.join(changed[:3])}). Pass --overwrite "
                    "to replace it, or --results DIR to keep both."
                )
            if writes:
                click.echo(f"{where}: done already ({path}); skipped. Pass --overwrite to train it again.", err=True)
            return existing, path
        for modality, stage in (stages or {}).items():
            if not Path(stage["checkpoint"]).is_file():
                raise click.ClickException(
                    f"{where}, stage {stage['method']}: {stage['result']} has no checkpoint "
                    f"{Path(stage['checkpoint']).name} beside it (made with --no-checkpoints?), and the {modality} "
                    "encoder starts from it. Pass --overwrite to train the stages again."
                )
        try:
            result = fit(
                recipe,
                data,
                catalog=found,
                seed=seed,
                protocol=protocol,
                hparams=planned,
                variant=variant,
                device=chosen_device,
                checkpoint=path.with_suffix(".pt") if keep else None,
                state=state,
                progress=progress,
                distributed=distributed,
            )
        except MsabenchError as error:
            if not label:
                raise
            raise click.ClickException(
                f"{where} (its settings: --set {label}:SECTION.KEY=VALUE, e.g. --set {label}:text.pretrained=DIR): "
                f"{error}"
            ) from error
        if stages:
            result.stages = stages
        if tuned and not label:
            result.tuned = tuned
        if writes:
            result.save(path)
            summary = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
            click.echo(f"{where}: best epoch {result.best_epoch}/{result.epochs}  {summary}  -> {path}", err=True)
        if distributed is not None:
            torch_barrier()  # the other ranks read what rank 0 wrote (a stage's result and checkpoint)
        return result, path

    results = []
    for seed in seed_list:
        started: dict[str, dict[str, str]] = {}
        for plan in plans:
            _, path = one_run(plan.recipe, plan.hparams, plan.variant, seed, keep=True, label=plan.recipe.name)
            for modality in plan.modalities:
                started[modality] = {
                    "method": plan.recipe.name,
                    "result": str(path),
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "checkpoint": str(path.with_suffix(".pt")),
                }
        own = merge(merge({}, hparams), {m: {"init_from": stage["checkpoint"]} for m, stage in started.items()})
        result, _ = one_run(recipe, own, variant, seed, keep=checkpoints, stages=started if plans else None)
        results.append(result)
    if not writes:
        return
    # Results and leaderboards go under the data's name (mmsa-custom: the file's), not the registered id.
    page = boards.render_dataset(data.name, [r for r in load_results(results_dir) if r.dataset == data.name])
    write_atomic(Path(boards_dir) / f"{data.name}.md", page)
    click.echo(boards.table(results))
    click.echo(f"\nLeaderboard: {Path(boards_dir) / f'{data.name}.md'}", err=True)


@dataclass
class Resolved:
    """What `run` and `sweep` make of their method, component, hyper-parameter and data flags."""

    recipe: Method
    instance: Dataset
    hparams: dict[str, Any]
    stages: list[StagePlan]
    changes: list[str]  # the row's variant, one entry per change
    fraction: tuple[float, int] | None
    catalog: Catalog

    def load(self) -> Data:
        """The data, checked again against the method (a dataset may learn its inputs from its files), with the
        host's train_fraction applied."""
        from msabench.catalog import input_key
        from msabench.data import subsample_train

        load = self.instance.load
        if "inputs" in inspect.signature(load).parameters:  # it can leave the inputs no encoder reads in the file
            recipes = [self.recipe, *(stage.recipe for stage in self.stages)]
            read = {input_key(self.catalog.encoders[e], m) for r in recipes for m, e in r.encoders.items()}
            data = load(inputs=[key for key in self.instance.inputs if key in read])
        else:
            data = load()
        self.catalog.check(self.recipe, self.instance)
        return subsample_train(data, *self.fraction) if self.fraction is not None else data


def resolve_run(found, method, dataset, encoders, objective, sets, data_options, data_root, no_verify) -> Resolved:
    """The method (components swapped), the dataset instance, the hyper-parameters (with --set), the stages and
    the row's variant, every flag checked before any data loads."""
    from msabench.components import merge

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
    options = dataset_options(dataset_cls, data_options, host=HOST_OPTIONS)
    fraction = host_fraction(options)
    kwargs = {key: value for key, value in options.items() if key not in HOST_OPTIONS}
    instance = dataset_cls(data_root, verify=not no_verify, **kwargs)  # cheap: its options may set task, name...
    found.check(recipe, instance)
    overrides, staged = parse_sets(sets, recipe)
    hparams = merge(recipe.hparams_for(instance), overrides)
    found.check_hparams(recipe, hparams)
    data_changes = sorted(
        f"data.{key}={shown(value)}" for key, value in options.items() if key not in dataset_cls.identity_options
    )
    plans, hparams = plan_stages(found, recipe, instance, hparams, overrides, staged, data_changes)
    changes = [f"{m}={n}" for m, n in sorted(swaps.items())] + ([f"objective={objective}"] if objective else [])
    changes += sorted(
        f"{section}.{key}={shown(value)}" for section, values in overrides.items() for key, value in values.items()
    )
    changes += sorted(
        f"{stage}:{section}.{key}={shown(value)}"
        for stage, sections in staged.items()
        for section, values in sections.items()
        for key, value in values.items()
    )
    changes += data_changes
    return Resolved(recipe, instance, hparams, plans, changes, fraction, found)


# Data options the host applies to every dataset (after it loads), not passed to the Dataset class.
HOST_OPTIONS = ("train_fraction", "train_fraction_seed")


def host_fraction(options: dict[str, Any]) -> tuple[float, int] | None:
    """(fraction, seed) of ``--data-option train_fraction=F [train_fraction_seed=N]``, checked; None for all of the
    train split (train_fraction=1 is dropped from the options, so it is the same row as no option)."""
    from msabench.data import DEFAULT_FRACTION_SEED, whole

    if "train_fraction" not in options:
        if "train_fraction_seed" in options:
            raise click.BadParameter(
                "train_fraction_seed draws the samples of train_fraction; give train_fraction too",
                param_hint="--data-option",
            )
        return None
    fraction = options["train_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise click.BadParameter(
            f"train_fraction={fraction}: expected a number in (0, 1], e.g. train_fraction=0.1",
            param_hint="--data-option",
        )
    seed = whole(options.get("train_fraction_seed", DEFAULT_FRACTION_SEED), "train_fraction_seed")
    if fraction == 1:
        options.pop("train_fraction")
        options.pop("train_fraction_seed", None)
        return None
    return float(fraction), seed


def parse_sets(values: tuple[str, ...], recipe) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """--set pairs as (this method's overrides, {stage method: its overrides}); ``STAGE:SECTION.KEY`` addresses one
    of the method's stages."""
    from msabench.components import merge

    own: dict[str, Any] = {}
    staged: dict[str, dict[str, Any]] = {}
    names = list(dict.fromkeys(stage.method for stage in recipe.stages))
    for key, value in assignments(values, "--set").items():
        stage, colon, rest = key.rpartition(":")
        if colon and stage not in names:
            known = f"its stages are {', '.join(names)}" if names else "it has no stages"
            raise click.BadParameter(f"{stage!r} is not a stage of {recipe.name} ({known})", param_hint="--set")
        section, dot, name = rest.partition(".")
        if not dot:
            raise click.BadParameter(
                f"{key!r} needs a section, e.g. {stage + ':' if colon else ''}train.{rest}", param_hint="--set"
            )
        merge(staged.setdefault(stage, {}) if colon else own, {section: {name: json_or_text(value)}})
    return own, staged


@dataclass(frozen=True)
class StagePlan:
    """One earlier run of a multi-stage method: the method, its hyper-parameters and variant, the modalities it
    starts."""

    recipe: Any
    hparams: dict[str, Any]
    variant: str
    modalities: tuple[str, ...]


def plan_stages(
    found, recipe, dataset_cls, hparams, overrides, staged, data_changes
) -> tuple[list[StagePlan], dict[str, Any]]:
    """The stage runs of `recipe` on `dataset_cls`, and the final stage's hyper-parameters, checked before any data
    loads. A staged encoder is built as its stage built it (the stage's section for that modality, e.g. its
    pretrained weights, tokenizer or config), with the final method's own settings on top (e.g. freeze), and then
    started from the stage's checkpoint. A modality whose ``init_from`` the user set (``--set text.init_from=PATH``
    or ``=null``) does not start from its stage."""
    from msabench.components import merge

    modalities: dict[str, list[str]] = {}
    for stage in recipe.stages:
        if "init_from" not in overrides.get(stage.modality, {}):
            modalities.setdefault(stage.method, []).append(stage.modality)
    if unused := sorted(set(staged) - set(modalities)):
        replaced = ", ".join(f"{s.modality}.init_from" for s in recipe.stages if s.method == unused[0])
        raise click.BadParameter(f"stage {unused[0]} does not run: --set {replaced} replaces it", param_hint="--set")
    plans, final = [], merge({}, hparams)
    for name, started in modalities.items():
        earlier = found.methods[name]
        found.check(earlier, dataset_cls)
        own = merge(earlier.hparams_for(dataset_cls), staged.get(name, {}))
        try:
            found.check_hparams(earlier, own)
        except MsabenchError as error:
            raise click.ClickException(
                f"stage {name} (its settings: --set {name}:SECTION.KEY=VALUE): {error}"
            ) from None
        changes = sorted(
            f"{section}.{key}={shown(value)}"
            for section, values in staged.get(name, {}).items()
            for key, value in values.items()
        )
        plans.append(StagePlan(earlier, own, ", ".join(changes + data_changes), tuple(started)))
        for modality in started:
            built = {key: value for key, value in own.get(modality, {}).items() if key != "init_from"}
            final[modality] = merge(merge({}, built), hparams.get(modality, {}))
    found.check_hparams(
        recipe, merge(merge({}, final), {m: {"init_from": "stage"} for p in plans for m in p.modalities})
    )
    return plans, final


def dataset_options(dataset_cls, values: tuple[str, ...], host: tuple[str, ...] = ()) -> dict:
    """--data-option KEY=VALUE pairs (JSON values) checked against the dataset class's keyword arguments (and the
    `host` options, which the host applies to any dataset)."""
    options = {key: json_or_text(value) for key, value in assignments(values, "--data-option").items()}
    parameters = inspect.signature(dataset_cls).parameters.items()
    accepted = [name for name, p in parameters if p.kind == p.KEYWORD_ONLY and name != "verify"] + list(host)
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
                if obj.stages:
                    about += " | stages: " + ", ".join(f"{s.modality}<-{s.method}" for s in obj.stages)
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
@click.option(
    "--charts/--no-charts",
    default=True,
    show_default=True,
    help="Draw each dataset's chart (<out>/charts/<dataset>.svg); a page embeds the charts that exist.",
)
@click.option(
    "--robustness", "with_robustness", is_flag=True, help="Add a robustness table from the reports beside the results."
)
def leaderboard_(results_dir, out_dir, datasets, check, charts, with_robustness):
    """Render one Markdown leaderboard per dataset from result files (and print it)."""
    from msabench import leaderboard as boards
    from msabench.plot import leaderboard_charts  # matplotlib loads only for the commands that draw
    from msabench.results import load_results, result_files, write_atomic
    from msabench.robustness import read, report_path

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    found = load_results(results_dir)
    links = leaderboard_charts(found, Path(out_dir) / "charts", draw=charts and not check, only=datasets)
    reports = []
    if with_robustness:
        reports = [read(report_path(p)) for p in result_files(results_dir) if report_path(p).is_file()]
    pages = boards.render(found, links, reports)
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
            click.echo(page)
            click.echo(f"wrote {path}", err=True)
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
        + (f"; {skipped} unreadable samples not predicted" if skipped else "")
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
        f"wrote {instance.root / relative}; "
        f"`msabench run --dataset {dataset} --data-root {instance.root} ...` now reads it"
    )


@cli.command()
@click.option(
    "--results",
    "results_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of result JSON files.",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "markdown"]), default="csv", show_default=True)
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
def results(results_dir, fmt, datasets):
    """One row per run (metrics, epochs, time, memory, flags): `pandas.read_csv` reads the CSV as is."""
    from msabench import leaderboard as boards
    from msabench.results import load_results

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    found = [r for r in load_results(results_dir) if not datasets or r.dataset in datasets]
    if not found:
        raise click.ClickException(
            f"no result files (seed-*.json) under {results_dir}" + (f" for {', '.join(datasets)}." if datasets else ".")
        )
    click.echo(boards.format_runs(found, fmt), nl=False)


@cli.command()
@click.option(
    "--results",
    "results_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of result JSON files (and robustness reports beside them).",
)
@click.option(
    "--out", "out_dir", default="plots", show_default=True, type=click.Path(file_okay=False), help="Where charts go."
)
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
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
def plot(results_dir, out_dir, datasets, kinds, formats):
    """Draw training curves per run, a leaderboard chart per dataset and robustness curves, from result files."""
    from msabench.plot import plot_results
    from msabench.results import RunResult, result_files

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}: run `msabench run` first, or pass --results.")
    pairs = [(path, RunResult.load(path)) for path in result_files(results_dir)]
    pairs = [(path, result) for path, result in pairs if not datasets or result.dataset in datasets]
    if not pairs:
        raise click.ClickException(f"no result files (seed-*.json) under {results_dir}.")
    written = plot_results(
        pairs,
        out_dir,
        kinds=kinds or ("curves", "leaderboard", "robustness"),
        formats=formats or ("png", "svg"),
        root=results_dir,
    )
    click.echo(f"wrote {len(written)} files under {out_dir} from {len(pairs)} result files", err=True)


@cli.command()
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
@click.option(
    "--data-root", type=click.Path(file_okay=False), help="[default: $MSABENCH_DATA or ~/.local/share/msabench/data]"
)
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE", help="As the run used (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
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
def robustness(run_path, reference, data_root, data_options, device, corruptions, threads, plot):
    """Evaluate a trained run on its test split under corrupted and missing inputs (MultiBench's protocol)."""
    from msabench.inference import load_run
    from msabench.robustness import measure, report_path, summary, write

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    found = load_catalog()
    checkpoint, _ = load_run(run_path)
    options = dataset_options(found.datasets[checkpoint["dataset"]], data_options)
    started = time.perf_counter()
    report = measure(
        run_path,
        found,
        data_root=data_root,
        data_options=options,
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


@cli.command()
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
    type=click.IntRange(min=1),
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
@click.pass_context
def sweep(
    ctx,
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
    **flags,
):
    """Tune hyper-parameters on validation with Ray Tune, then run the chosen ones over the protocol's seeds.

    Each configuration of the grid trains and validates as a Ray Tune trial (never tested); the one with the best
    validation selection value is chosen and then run like `msabench run` (same skip and resume rules), each seed
    tested once, as its own leaderboard row marked tuned. Running the same command again resumes: finished trials
    are kept, not rerun.
    """
    from msabench import sweep as sweeps
    from msabench.protocol import PROTOCOL
    from msabench.results import write_atomic
    from msabench.train import resolve_hparams, set_threads

    logging.basicConfig(level=logging.WARNING if flags["quiet"] else logging.INFO, format="%(message)s")
    departures = {key: flags[key] for key in ("max_epochs", "patience") if flags[key]}
    protocol = replace(PROTOCOL, precision=flags["precision"], **departures)
    final_seeds = parse_seeds(flags["seeds"], protocol.seeds)
    seeds = parse_seeds(trial_seeds, final_seeds[:1])
    gpus = sweeps.device_for(flags["device"], gpus_per_trial)
    cpus = cpus_per_trial or flags["threads"] or 1
    found = load_catalog()
    plan = resolve_run(
        found,
        flags["method"],
        flags["dataset"],
        flags["encoders"],
        flags["objective"],
        flags["sets"],
        flags["data_options"],
        flags["data_root"],
        flags["no_verify"],
    )
    recipe, hparams, changes = plan.recipe, plan.hparams, plan.changes
    if plan.stages:
        raise click.ClickException(
            f"{recipe.name} trains in stages ({', '.join(s.recipe.name for s in plan.stages)}): sweep each stage's "
            "method on its own, then run this one with the chosen settings (--set STAGE:SECTION.KEY=VALUE)."
        )
    axes = sweeps.parse_grid(grids, hparams_sets(flags["sets"]))
    configs = sweeps.configurations(axes, samples, search_seed)
    for config in configs:  # every configuration's values checked before any data loads
        found.check_hparams(recipe, sweeps.with_config(hparams, config))
    set_threads(flags["threads"])
    data = plan.load()

    folder = Path(sweeps_dir) / data.name / recipe.name / protocol.id
    fixed = ", ".join(changes)
    specs = []
    for config in configs:
        for seed in seeds:
            planned = resolve_hparams(sweeps.with_config(hparams, config), data, seed, protocol, flags["results_dir"])
            trial = sweeps.trial_id(recipe, data, protocol, seed, planned)
            variant = ", ".join(filter(None, [fixed, *(f"{k}={v}" for k, v in config.items())]))
            specs.append({"id": trial, "seed": seed, "config": config, "hparams": planned, "variant": variant})
    kept = {spec["id"]: sweeps.finished(folder, spec["id"]) for spec in specs}
    remaining = [spec for spec in specs if kept[spec["id"]] is None]
    grid_size = len(sweeps.configurations(axes))
    search = (
        f"random search: {len(configs)} of a grid of {grid_size} (seed {search_seed})"
        if len(configs) < grid_size
        else f"grid search: {grid_size} configurations"
    )
    identity = {
        "grid": {a.key: a.texts for a in axes},
        "configs": configs,
        "seeds": seeds,
        "trials": [s["id"] for s in specs],
    }
    name = f"sweep-{sweeps.sweep_id(identity)}"
    click.echo(
        f"{name}: {search} x {len(seeds)} trial seed(s) = {len(specs)} trials; "
        f"{len(specs) - len(remaining)} finished already (kept), {len(remaining)} to train -> {folder}",
        err=True,
    )
    if remaining:
        sweeps.run_on_ray(
            remaining,
            catalog=found,
            method=recipe,
            data=data,
            protocol=protocol,
            folder=folder,
            name=name,
            address=address,
            cpus_per_trial=cpus,
            gpus_per_trial=gpus,
            max_concurrent=max_concurrent,
            storage=ray_storage,
            quiet=flags["quiet"],
        )
    records = [sweeps.finished(folder, spec["id"]) or sweeps.missing(folder, spec) for spec in specs]
    chosen, rows = sweeps.choose(configs, records)
    sets = [*flags["sets"], *(f"{key}={text}" for key, text in configs[chosen].items())]
    command = " ".join(
        ["msabench run", f"--method {recipe.name}", f"--dataset {flags['dataset']}"]
        + [f"--encoder {e}" for e in flags["encoders"]]
        + ([f"--objective {flags['objective']}"] if flags["objective"] else [])
        + [f"--set {s}" for s in sets]
        + [f"--data-option {o}" for o in flags["data_options"]]
        + ([f"--data-root {flags['data_root']}"] if flags["data_root"] else [])
        + ([f"--seeds {flags['seeds']}"] if flags["seeds"] else [])
        + ([f"--max-epochs {flags['max_epochs']}"] if flags["max_epochs"] else [])
        + ([f"--patience {flags['patience']}"] if flags["patience"] else [])
        + ([f"--precision {flags['precision']}"] if flags["precision"] != "fp32" else [])
    )
    summary = {
        "schema": sweeps.SCHEMA,
        "sweep": name,
        "method": recipe.name,
        "dataset": data.name,
        "protocol": protocol.id,
        "variant": fixed,
        "search": search,
        "grid": {axis.key: list(axis.texts) for axis in axes},
        "seeds": list(seeds),
        "selection": records[0]["selection"],
        "configurations": rows,
        "chosen": rows[chosen],
        "command": command,
    }
    path = folder / name / "summary.json"
    write_atomic(path, json.dumps(summary, indent=1) + "\n")
    page = sweeps.summary_markdown(summary)
    write_atomic(path.with_suffix(".md"), page)
    click.echo(page)
    click.echo(f"Sweep summary: {path.with_suffix('.md')}", err=True)
    if not trials_only:
        ctx.invoke(run, **{**flags, "sets": tuple(sets), "threads": flags["threads"], "tuned": str(path)})


def hparams_sets(sets: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """--set SECTION.KEY=VALUE pairs as sections (only their keys matter here)."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in assignments(sets, "--set").items():
        section, _, name = key.partition(".")
        sections.setdefault(section, {})[name] = value
    return sections


# `sweep` shares run's flags for the method, the data, the protocol and the final runs.
SWEEP_SHARED = (
    "method", "dataset", "seeds", "data_root", "no_verify", "results_dir", "boards_dir", "device", "threads",
    "precision", "max_epochs", "patience", "encoders", "objective", "sets", "data_options", "progress",
    "checkpoints", "quiet",
)  # fmt: skip
sweep.params[:0] = [param for param in run.params if param.name in SWEEP_SHARED]
