"""The run API: what every front end (the CLI, sweeps, notebooks, bench scripts) trains methods through.

    import msabench

    results = msabench.run("tfn", "synthetic-mosi", seeds=[1111], sets={"train.lr": 1e-3})
    msabench.load_results("results")          # one row per run (a pandas DataFrame when pandas is installed)

A run goes request -> plan -> execute:

- `plan` resolves a `Request` against the installed plugins: the method (components swapped), the dataset (its
  options applied), the protocol, the seeds, the stage runs of a multi-stage method, and the hyper-parameters,
  resolved once into `Hparams` (read-only, each value with its source) and checked against what each component
  declares. Nothing loads or trains; every mistake is a one-line `MsabenchError` here.
- `execute` loads the data once and trains each `Unit` (per seed: the stage runs, then the final run) under the
  rules of the results tree (`msabench.store`): a finished unit with the same data, hyper-parameters, protocol and
  stages is skipped, one that differs is refused unless ``overwrite``, an interrupted one resumes after its last
  finished epoch, and nothing already saved is removed before its replacement is saved. It returns the final runs'
  `RunResult`s and renders the dataset's leaderboard page.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msabench.catalog import Catalog, input_key
from msabench.components import Data, Dataset, Method, merge
from msabench.errors import CatalogError, MsabenchError, RequestError
from msabench.hparams import Hparams, Value
from msabench.options import dataset_options, host_fraction
from msabench.protocol import PROTOCOL, Protocol
from msabench.results import RunResult, result_path
from msabench.runtime import PRECISIONS

if TYPE_CHECKING:
    import pandas

    from msabench.inference import Predictions

log = logging.getLogger("msabench")

SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Request:
    """What to run, as `msabench run`'s flags say it: every field has the flag's name and meaning.

    ``sets`` maps ``"[STAGE:]SECTION.KEY"`` to a value (``{"train.lr": 1e-4}``); ``data_options`` and ``encoders``
    map names to values (``{"train_fraction": 0.1}``, ``{"text": "lstm-text"}``). ``leaderboards=None`` renders the
    dataset's page in ``./leaderboards`` (see `msabench.store.page_folder`)."""

    method: str
    dataset: str
    seeds: Sequence[int] | None = None
    sets: Mapping[str, Any] = field(default_factory=dict)
    data_options: Mapping[str, Any] = field(default_factory=dict)
    encoders: Mapping[str, str] = field(default_factory=dict)
    objective: str | None = None
    max_epochs: int | None = None
    patience: int | None = None
    precision: str = "fp32"
    device: str = "auto"
    threads: int | None = None
    data_root: str | None = None
    verify: bool = True
    results: str = "results"
    leaderboards: str | None = None
    overwrite: bool = False
    checkpoints: bool = True
    tuned: str | None = None  # a sweep's summary.json: the sweep chose these settings

    def command(self, seeds: Sequence[int] | None = None, threads: int | None = None) -> str:
        """The equivalent ``msabench run`` command line (for `seeds`, and `threads` as used, when given)."""
        seeds = seeds if seeds is not None else self.seeds
        flags = [("--method", self.method), ("--dataset", self.dataset)]
        flags += [("--encoder", f"{m}={e}") for m, e in self.encoders.items()]
        flags += [("--objective", self.objective)] if self.objective else []
        flags += [("--set", f"{key}={_text(value)}") for key, value in self.sets.items()]
        flags += [("--data-option", f"{key}={_text(value)}") for key, value in self.data_options.items()]
        flags += [("--seeds", ",".join(map(str, seeds)))] if seeds else []
        flags += [("--data-root", self.data_root)] if self.data_root else []
        for name in ("max_epochs", "patience"):
            flags += [(f"--{name.replace('_', '-')}", str(getattr(self, name)))] if getattr(self, name) else []
        flags += [("--precision", self.precision)] if self.precision != "fp32" else []
        flags += [("--device", self.device)] if self.device != "auto" else []
        threads = threads if threads is not None else self.threads
        flags += [("--threads", str(threads))] if threads else []
        flags += [("--tuned", self.tuned)] if self.tuned else []
        words = ["msabench", "run", *(word for pair in flags for word in pair)]
        return " ".join(shlex.quote(word) for word in words) + (" --no-verify" if not self.verify else "")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class StagePlan:
    """One earlier run of a multi-stage method: the method, its hyper-parameters and variant, the modalities its
    checkpoint starts."""

    method: Method
    hparams: Hparams
    variant: str
    modalities: tuple[str, ...]


@dataclass(frozen=True)
class Unit:
    """One training run of a plan: a seed's stage run (``stage`` set) or its final run."""

    seed: int
    method: Method
    hparams: dict[str, Any]  # as the run uses and records them: placeholders filled, batch sizes set
    variant: str
    path: Path  # its result file
    keep: bool  # save the selected weights beside the result
    stage: StagePlan | None = None

    @property
    def where(self) -> str:
        return f"seed {self.seed}" + (f", stage {self.method.name}" if self.stage else "")


@dataclass(frozen=True)
class Plan:
    """A request resolved against the installed plugins and checked; nothing loaded or trained yet."""

    request: Request
    catalog: Catalog
    method: Method
    dataset: Dataset
    protocol: Protocol
    seeds: tuple[int, ...]
    hparams: Hparams
    stages: tuple[StagePlan, ...]
    variant: str
    fraction: tuple[float, int] | None
    threads: int
    tuned: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The data's name: results and pages go under it (mmsa-custom: the file's name, not the registered id)."""
        return self.dataset.name

    def units(self, seed: int, name: str | None = None) -> list[Unit]:
        """The seed's stage runs, then its final run (whose staged encoders start from the stages' checkpoints).
        `name`: the loaded data's name, where the dataset learns it from its files (default: `Plan.name`)."""
        from msabench.train import resolve_hparams

        results, name = self.request.results, name or self.name

        def unit(method: Method, hparams: dict, variant: str, keep: bool, stage: StagePlan | None = None) -> Unit:
            path = result_path(results, name, method.name, seed, variant, protocol=self.protocol.id)
            filled = resolve_hparams(hparams, name, seed, self.protocol, results)
            return Unit(seed, method, filled, variant, path, keep, stage)

        staged = [unit(stage.method, stage.hparams.to_dict(), stage.variant, True, stage) for stage in self.stages]
        final = self.hparams.to_dict()
        for stage, run in zip(self.stages, staged, strict=True):
            for modality in stage.modalities:
                final.setdefault(modality, {})["init_from"] = str(run.path.with_suffix(".pt"))
        return [*staged, unit(self.method, final, self.variant, self.request.checkpoints)]

    def load(self) -> Data:
        """The data: only the inputs the encoders read (where the dataset can leave the rest in its files), checked
        again against the method and for what every dataset must satisfy (`Data.checked`), with the host's train
        fraction applied."""
        from msabench.splits import subsample_train

        load: Callable[..., Data] = self.dataset.load  # some datasets take the inputs to read (`inputs=`)
        if "inputs" in inspect.signature(load).parameters:
            recipes = [self.method, *(stage.method for stage in self.stages)]
            read = {input_key(self.catalog.encoders[e], m) for r in recipes for m, e in r.encoders.items()}
            data = load(inputs=[key for key in self.dataset.inputs if key in read])
        else:
            data = load()
        self.catalog.check(self.method, self.dataset)
        data = data.checked()
        return subsample_train(data, *self.fraction) if self.fraction is not None else data

    def describe(self) -> str:
        """What `execute` would do, one line per unit (`msabench run --dry-run`)."""
        from msabench.store import status

        lines = [
            f"{self.method.name} on {self.name}, protocol {self.protocol.id}"
            + (f", variant [{self.variant}]" if self.variant else "")
            + f", {len(self.seeds)} seed(s), {self.threads} thread(s)"
        ]
        for section, values in self.hparams.items():
            shown = ", ".join(
                f"{k}={json.dumps(v, default=str)} ({self.hparams.source(section, k)})" for k, v in values.items()
            )
            lines.append(f"  {section}: {shown}")
        for seed in self.seeds:
            for unit in self.units(seed):
                lines.append(f"  {unit.where}: {status(unit)} -> {unit.path}")
        return "\n".join(lines)


def plan(request: Request, *, catalog: Catalog | None = None) -> Plan:
    """Resolve and check a request (see `Plan`); raises a `MsabenchError` naming what is wrong and the fix."""
    from msabench.runtime import check_device, usable_threads
    from msabench.store import DEFAULT_PAGES, check_outputs

    protocol = _protocol(request)
    seeds = check_seeds(request.seeds, protocol.seeds)
    check_device(request.device, request.precision)
    catalog = catalog if catalog is not None else load_catalog()
    recipe = catalog.methods[request.method].for_dataset(catalog.datasets[request.dataset])
    for modality, name in request.encoders.items():
        catalog.encoders[name]  # unknown names fail here, with suggestions
        if modality not in recipe.encoders:
            raise RequestError(
                f"--encoder {modality}={name}: {recipe.name} has no {modality!r} encoder; "
                f"it has {', '.join(recipe.encoders)}."
            )
    if request.objective:
        catalog.objectives[request.objective]
    if request.encoders or request.objective:
        recipe = recipe.with_components(dict(request.encoders), request.objective)
    dataset_cls = catalog.datasets[request.dataset]
    options = dataset_options(dataset_cls, request.data_options)
    fraction = host_fraction(options)
    kwargs = {key: value for key, value in options.items() if key not in ("train_fraction", "train_fraction_seed")}
    dataset = dataset_cls(request.data_root, verify=request.verify, **kwargs)  # cheap: options may set task, name...
    catalog.check(recipe, dataset)
    own, staged = _split_sets(request.sets, recipe)
    defaults = _defaults(recipe, dataset)
    hparams = Hparams.layered(*defaults, ("user", own))
    catalog.check_hparams(recipe, hparams.to_dict())
    data_changes = _data_changes(dataset_cls, options, dataset)
    stages, hparams = _stages(catalog, recipe, dataset, hparams, own, staged, data_changes)
    for name, settings in [(recipe.name, hparams), *((s.method.name, s.hparams) for s in stages)]:
        epochs = settings["train"].get("max_epochs") if "train" in settings else None
        if epochs is not None and epochs > protocol.max_epochs and settings.source("train", "max_epochs") == "user":
            raise RequestError(
                f"{name}: train.max_epochs={epochs} is more than the protocol's cap of {protocol.max_epochs} epochs, "
                f"so the row would be labelled with epochs it never trains; pass --max-epochs {epochs} to raise the "
                "cap (another protocol, ranked apart)."
            )
        if epochs is not None and epochs > protocol.max_epochs and name == recipe.name:  # once a plan, not per stage
            log.info(
                "%s: its train.max_epochs=%s is capped at the protocol's %d epochs (--max-epochs %s trains them all, "
                "under another protocol, ranked apart)",
                name,
                epochs,
                protocol.max_epochs,
                epochs,
            )
    changes = [f"{m}={n}" for m, n in sorted(request.encoders.items())]
    changes += [f"objective={request.objective}"] if request.objective else []
    changes += _changes(own, Hparams.layered(*defaults))
    for name, stage_values in sorted(staged.items()):
        stage_defaults = Hparams.layered(*_defaults(catalog.methods[name], dataset))
        changes += [f"{name}:{change}" for change in _changes(stage_values, stage_defaults)]
    changes += data_changes
    tuned = None
    if request.tuned:
        from msabench.sweep import tuned_record, values

        tuned = tuned_record(request.tuned, recipe.name, hparams.to_dict())
        hparams = hparams.with_values("tuned", values(tuned["chosen"]))  # same values, their source the sweep
        changes = ["tuned", *changes]
    threads = usable_threads(request.threads)
    check_outputs(request.results, request.leaderboards or DEFAULT_PAGES)
    _check_root(dataset)
    return Plan(
        request,
        catalog,
        recipe,
        dataset,
        protocol,
        seeds,
        hparams,
        tuple(stages),
        ", ".join(changes),
        fraction,
        threads,
        tuned,
    )


def execute(plan: Plan, *, data: Data | None = None, progress: bool = True) -> list[RunResult]:
    """Train the plan's units (see `msabench.store.train_unit` for the rules), render the dataset's leaderboard page,
    and return the final runs' results, one per seed. Under ``torchrun`` every process trains each run together
    (DDP) and rank 0 writes. `data`: the plan's data, loaded already (a sweep's final runs)."""
    from msabench.runtime import init_distributed, select_device, set_threads
    from msabench.store import DEFAULT_PAGES, check_outputs, page_folder, stage_record, train_unit, write_page

    distributed = init_distributed()
    asked = plan.request.device
    if distributed is not None and asked == "auto" and _cuda():
        asked = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    device = select_device(asked)
    check_outputs(plan.request.results, plan.request.leaderboards or DEFAULT_PAGES, create=True)
    set_threads(plan.threads)
    data = data if data is not None else plan.load()
    folder = page_folder(plan.request, data.name)  # decided before training: from the results as they were
    found = []
    for seed in plan.seeds:
        started: dict[str, dict[str, str]] = {}
        for unit in plan.units(seed, data.name):
            staged = started if plan.stages and not unit.stage else None
            result = train_unit(
                plan, unit, data, device=device, stages=staged, progress=progress, distributed=distributed
            )
            started.update(stage_record(unit))
        found.append(result)
    if distributed is None or distributed.rank == 0:
        write_page(plan.request.results, folder, data.name)
    return found


def run(
    method: str,
    dataset: str,
    *,
    seeds: Sequence[int] | None = None,
    sets: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    encoders: Mapping[str, str] | None = None,
    objective: str | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    precision: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    data_root: str | os.PathLike | None = None,
    results: str | os.PathLike = "results",
    leaderboards: str | os.PathLike | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    progress: bool = True,
) -> list[RunResult] | Plan:
    """Train `method` on `dataset` under the protocol, one result per seed, as ``msabench run`` does; returns the
    results (or, with ``dry_run=True``, the `Plan` without training: ``print(plan.describe())``)."""
    request = Request(
        method,
        dataset,
        seeds=tuple(seeds) if seeds is not None else None,
        sets=dict(sets or {}),
        data_options=dict(data_options or {}),
        encoders=dict(encoders or {}),
        objective=objective,
        max_epochs=max_epochs,
        patience=patience,
        precision=precision or "fp32",
        device=device or "auto",
        threads=threads,
        data_root=None if data_root is None else str(data_root),
        results=str(results),
        leaderboards=None if leaderboards is None else str(leaderboards),
        overwrite=overwrite,
    )
    planned = plan(request)
    return planned if dry_run else execute(planned, progress=progress)


def predict(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str | None = None,
    data_root: str | os.PathLike | None = None,
    data_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    catalog: Catalog | None = None,
) -> Predictions:
    """Label a dataset's unlabelled inputs (Lab5: test_without_label.txt) with a trained run (its result JSON with
    the checkpoint beside it, or the checkpoint) and write them to `out` in the dataset's own format. `out` is never
    a result, checkpoint or resume file: those are refused, not overwritten."""
    from msabench.inference import load_run
    from msabench.inference import predict as label
    from msabench.results import protect

    protect(out)
    catalog = catalog if catalog is not None else load_catalog()
    checkpoint, result = load_run(run)
    dataset_cls = catalog.datasets[dataset or checkpoint.get("dataset")]
    options = dataset_options(dataset_cls, dict(data_options or {}), host=False)
    instance = dataset_cls(None if data_root is None else str(data_root), **options)
    predictions = label(checkpoint, result, instance, catalog, device=device)
    instance.write_predictions(out, predictions.ids, predictions.labels)
    return predictions


def load_catalog() -> Catalog:
    """Every installed plugin's components; each plugin problem is logged once, as a warning."""
    from msabench.plugins import get_plugin_manager

    catalog = Catalog.from_plugins(get_plugin_manager())
    for problem in catalog.problems:
        log.warning("Warning: %s", problem.message)
    return catalog


def load_results(
    results: str | os.PathLike = "results", *, datasets: Iterable[str] = ()
) -> pandas.DataFrame | list[dict]:
    """One row per run under `results` (metrics, epochs, time, memory, data flags; see `msabench results`): a
    pandas DataFrame when pandas is installed, else a list of dicts."""
    from msabench.leaderboard import runs
    from msabench.store import valid_results

    wanted = set(datasets)
    columns, rows = runs(r for r in valid_results(results) if not wanted or r.dataset in wanted)
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=columns)


def render_leaderboards(
    results: str | os.PathLike = "results",
    out: str | os.PathLike = "leaderboards",
    *,
    datasets: Iterable[str] = (),
    charts: bool = True,
    robustness: bool = False,
    write: bool = True,
) -> dict[str, str]:
    """Render one Markdown page per dataset from the result files under `results` (each with its chart and, with
    `robustness`, a robustness table) and write them to `out` unless `write` is false; returns {dataset: page}."""
    from msabench.store import render_pages

    return render_pages(results, out, write=write, datasets=tuple(datasets), charts=charts, robustness=robustness)


def draw_plots(
    results: str | os.PathLike = "results",
    out: str | os.PathLike = "plots",
    *,
    datasets: Iterable[str] = (),
    kinds: Iterable[str] = ("curves", "leaderboard", "robustness"),
    formats: Iterable[str] = ("png", "svg"),
) -> list[Path]:
    """Draw training curves per run, a chart per dataset and robustness curves from the result files; returns the
    files written."""
    from msabench.plot import plot_results
    from msabench.schema import read_valid
    from msabench.store import valid_results

    wanted = set(datasets)
    valid_results(results)  # warns about each invalid file, which is not drawn
    pairs = [(path, result) for path, result in read_valid(results)[0] if not wanted or result.dataset in wanted]
    if not pairs:
        raise RequestError(
            f"no result files (seed-*.json) under {results}" + (f" for {', '.join(sorted(wanted))}." if wanted else ".")
        )
    return plot_results(pairs, out, kinds=tuple(kinds), formats=tuple(formats), root=results)


# -- planning ---------------------------------------------------------------------------------------


def _protocol(request: Request) -> Protocol:
    if request.precision not in PRECISIONS:
        raise RequestError(f"--precision {request.precision}: use one of {', '.join(PRECISIONS)}.")
    for name in ("max_epochs", "patience"):
        value = getattr(request, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RequestError(f"--{name.replace('_', '-')} must be a whole number >= 1; got {value!r}.")
    return replace(
        PROTOCOL,
        precision=request.precision,
        max_epochs=request.max_epochs or PROTOCOL.max_epochs,
        patience=request.patience or PROTOCOL.patience,
    )


def check_seeds(seeds: Sequence[int] | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """Whole numbers in [0, 2**32), each once; None: the protocol's."""
    if seeds is None:
        return default
    seeds = tuple(seeds)
    if not seeds:
        raise RequestError(
            "--seeds is empty: give at least one seed, e.g. --seeds 1111 (or leave it out for 1111-1115)."
        )
    if bad := [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT]:
        raise RequestError(f"--seeds: seeds are whole numbers in 0..{SEED_LIMIT - 1} (torch's range); got {bad[0]!r}.")
    if len(set(seeds)) != len(seeds):
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        raise RequestError(f"--seeds: seed {repeated[0]} is given twice; each seed runs once.")
    return seeds


def _split_sets(
    sets: Mapping[str, Any], recipe: Method
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """``sets`` as (this method's sections, {stage method: its sections}); ``STAGE:SECTION.KEY`` addresses one of the
    method's stages."""
    own: dict[str, dict[str, Any]] = {}
    staged: dict[str, dict[str, dict[str, Any]]] = {}
    names = list(dict.fromkeys(stage.method for stage in recipe.stages))
    for key, value in sets.items():
        stage, colon, rest = key.rpartition(":")
        if colon and stage not in names:
            known = f"its stages are {', '.join(names)}" if names else "it has no stages"
            raise RequestError(f"--set {key}: {stage!r} is not a stage of {recipe.name} ({known}).")
        section, dot, name = rest.partition(".")
        if not dot or not section or not name:
            raise RequestError(
                f"--set {key}: expected SECTION.KEY, e.g. {stage + ':' if colon else ''}train.{rest or 'lr'}."
            )
        target = staged.setdefault(stage, {}) if colon else own
        target.setdefault(section, {})[name] = value
    return own, staged


def _defaults(recipe: Method, dataset: Dataset | type[Dataset]) -> list[tuple[str, Mapping[str, Any]]]:
    """The method's registered hyper-parameters, then the paper's values for this dataset, as source layers."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("method", recipe.hparams)]
    for key in (dataset.hparams_from, dataset.name):
        if key and key in recipe.overrides:
            layers.append((f"dataset:{key}", recipe.overrides[key]))
    return layers


def _changes(overrides: Mapping[str, Mapping[str, Any]], defaults: Hparams) -> list[str]:
    """The row-variant entries of user overrides: those that change a value (a --set equal to the default is not a
    new row)."""
    changes = []
    for section, values in overrides.items():
        for key, value in values.items():
            before = defaults[section].get(key) if section in defaults else None
            after = defaults.with_values("user", {section: {key: value}})[section][key]
            if section in defaults and key in defaults[section] and _stored(before) == _stored(after):
                continue
            changes.append(f"{section}.{key}={_shown(value)}")
    return sorted(changes)


def _stored(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any) -> str:
    """How a changed value appears in a row label: JSON, with a long path cut to its file name and a short hash."""
    text = json.dumps(value)
    if isinstance(value, str) and "/" in value and len(text) > 32:
        return f"{Path(value).name}~{hashlib.sha256(value.encode()).hexdigest()[:6]}"
    return text


def _data_changes(dataset_cls: type[Dataset], options: dict[str, Any], dataset: Dataset) -> list[str]:
    """The data options that make a row a variant: not those that name the data (``identity_options``), nor one
    that leaves the dataset as it is by default (its signature's default, or the value the dataset settles on
    without the option: ``split_seed=42`` where 42 is the default seed)."""
    defaults = {name: p.default for name, p in inspect.signature(dataset_cls).parameters.items()}
    try:
        plain: Dataset | None = dataset_cls(dataset.root, verify=False)
    except MsabenchError:
        plain = None

    def at_default(key: str, value: Any) -> bool:
        if key in defaults and type(value) is type(defaults[key]) and value == defaults[key]:
            return True
        return plain is not None and hasattr(plain, key) and getattr(plain, key) == getattr(dataset, key, plain)

    return sorted(
        f"data.{key}={_shown(value)}"
        for key, value in options.items()
        if key not in dataset_cls.identity_options and not at_default(key, value)
    )


def _stages(catalog, recipe, dataset, hparams: Hparams, own, staged, data_changes) -> tuple[list[StagePlan], Hparams]:
    """The stage runs of `recipe` on `dataset`, and the final run's hyper-parameters. A staged encoder is built as
    its stage built it (the stage's section for that modality: its pretrained weights, tokenizer or config), with
    the final method's own settings on top (e.g. freeze), and starts from the stage's checkpoint. A modality whose
    ``init_from`` the user set does not start from its stage."""
    modalities: dict[str, list[str]] = {}
    for stage in recipe.stages:
        if "init_from" not in own.get(stage.modality, {}):
            modalities.setdefault(stage.method, []).append(stage.modality)
    if unused := sorted(set(staged) - set(modalities)):
        replaced = ", ".join(f"{s.modality}.init_from" for s in recipe.stages if s.method == unused[0])
        raise RequestError(f"--set {unused[0]}:...: stage {unused[0]} does not run: --set {replaced} replaces it.")
    plans, sections = [], {s: hparams.values(s) for s in hparams}
    for name, started in modalities.items():
        earlier = catalog.methods[name]
        catalog.check(earlier, dataset)
        stage_hparams = Hparams.layered(*_defaults(earlier, dataset), ("user", staged.get(name, {})))
        try:
            catalog.check_hparams(earlier, stage_hparams.to_dict())
        except MsabenchError as error:
            raise CatalogError(f"stage {name} (its settings: --set {name}:SECTION.KEY=VALUE): {error}") from None
        changes = _changes(staged.get(name, {}), Hparams.layered(*_defaults(earlier, dataset)))
        plans.append(StagePlan(earlier, stage_hparams, ", ".join(changes + data_changes), tuple(started)))
        for modality in started:
            built = stage_hparams.values(modality) if modality in stage_hparams else {}
            section = {k: Value(v.value, f"stage:{name}") for k, v in built.items() if k != "init_from"}
            for key, value in sections.get(modality, {}).items():  # the final method's own settings on top
                old = section.get(key)
                if old is not None and isinstance(old.value, Mapping) and isinstance(value.value, Mapping):
                    value = Value(merge(merge({}, old.value), value.value), value.source)
                section[key] = value
            sections[modality] = section
    final = Hparams(sections)
    with_stages = final.with_values("stage", {m: {"init_from": "stage"} for p in plans for m in p.modalities})
    catalog.check_hparams(recipe, with_stages.to_dict())
    return plans, final


def _check_root(dataset: Dataset) -> None:
    """The data root, where it exists, is a folder (a missing file is the dataset's first check when it loads)."""
    root = Path(dataset.root)
    if root.exists() and not root.is_dir():
        raise RequestError(f"--data-root {root} is a file; pass the folder that holds the datasets' files.")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
