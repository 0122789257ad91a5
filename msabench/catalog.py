"""The catalog: runs the register_* hooks, validates everything, and looks components up by name.

Validation happens when the catalog is built, before anything loads or trains. A problem is confined to the
names it touches: a component registered twice, a class that is not what its hook registers, a method naming a
component no plugin has, a method whose hyper-parameters its components refuse, a hook that raises. Such a name
is unavailable (looking it up raises an error that says why and what to do), the problem is in
`Catalog.problems` (the CLI prints each as a warning), and every other name works.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict
from typing import Any

import pluggy

from msabench.components import Data, Dataset, Encoder, Fusion, Method, Model, Objective, Task
from msabench.errors import CatalogError, UnknownName
from msabench.hparams import check_arguments
from msabench.metrics import FAMILIES, METRICS
from msabench.plugins import Problem, distribution
from msabench.settings import check_train

KINDS = {"datasets": Dataset, "encoders": Encoder, "fusions": Fusion, "objectives": Objective, "methods": Method}
BATCHES = ("samples", "groups")  # Method.batches
_ACTIVE: ContextVar[Catalog | None] = ContextVar("msabench_catalog", default=None)
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Registry:
    """Name -> component for one kind, remembering which plugin registered each, and the names that are unusable."""

    def __init__(self, kind: str, catalog: Catalog | None = None):
        self.kind = kind  # plural, e.g. "encoders"
        self.entries: dict[str, tuple[Any, str]] = {}
        self.unusable: dict[str, str] = {}  # name -> why (one line, with the fix)
        self.catalog = catalog

    def __getitem__(self, name: str) -> Any:
        if name in self.unusable:
            raise CatalogError(self.unusable[name])
        if name not in self.entries:
            singular = self.kind[:-1]
            close = difflib.get_close_matches(name, self.entries, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            broken = self.catalog.broken_plugins() if self.catalog is not None else []
            note = f" (Plugins with problems: {', '.join(broken)}; see the warnings.)" if broken else ""
            if (only := os.environ.get("MSABENCH_LOAD_PLUGINS")) is not None:
                loaded = "no plugins" if not only.strip() else f"only the plugins {only.strip()!r}"
                note += f" MSABENCH_LOAD_PLUGINS={only!r} is set: it loads {loaded}; unset it to load every plugin."
            available = ", ".join(sorted(self.entries)) or "none"
            raise UnknownName(f"Unknown {singular} {name!r}.{hint} Available: {available}.{note}")
        return self.entries[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def plugin(self, name: str) -> str:
        return self.entries[name][1]

    def disable(self, name: str, why: str) -> None:
        self.entries.pop(name, None)
        self.unusable[name] = why


class Catalog:
    """Everything the installed plugins register, validated as a whole."""

    def __init__(self) -> None:
        self.registries = {kind: Registry(kind, self) for kind in KINDS}
        self.plugin_distributions: dict[str, tuple[str, str]] = {}
        self.problems: list[Problem] = []

    datasets = property(lambda self: self.registries["datasets"])
    encoders = property(lambda self: self.registries["encoders"])
    fusions = property(lambda self: self.registries["fusions"])
    objectives = property(lambda self: self.registries["objectives"])
    methods = property(lambda self: self.registries["methods"])

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> Catalog:
        """Call every plugin's register_* hooks, then check that the methods' references resolve."""
        catalog = cls()
        catalog.problems += getattr(pm, "problems", [])
        for name, _ in pm.list_name_plugin():
            catalog.plugin_distributions[name] = distribution(pm, name)
        for kind in KINDS:
            for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
                catalog._call(kind, impl, pm)
        catalog.validate()
        return catalog

    def _call(self, kind: str, impl: Any, pm: pluggy.PluginManager) -> None:
        """Run one plugin's register_<kind> hook; what it registers counts only when the hook finishes."""
        plugin = impl.plugin_name
        skip = pm.skip_hint(plugin) if hasattr(pm, "skip_hint") else "MSABENCH_LOAD_PLUGINS"
        if impl.hookwrapper or impl.wrapper:
            self.problem(
                plugin,
                f"msabench plugin {plugin!r}: register_{kind} cannot be a hook wrapper; register things directly.",
            )
            return
        registered: list[Any] = []
        try:
            impl.function(**{arg: registered.append for arg in impl.argnames})
        except Exception as error:
            self.problem(
                plugin,
                f"msabench plugin {plugin!r} failed in register_{kind}: {type(error).__name__}: {error}. Nothing it "
                f"registers there is available. Fix the plugin, or set {skip} to skip it.",
            )
            return
        for obj in registered:
            try:
                self.add(kind, obj, plugin)
            except CatalogError as error:
                self.problem(plugin, str(error))

    def problem(self, plugin: str, message: str) -> None:
        self.problems.append(Problem(plugin, message))

    def broken_plugins(self) -> list[str]:
        return sorted({problem.plugin for problem in self.problems})

    def add(self, kind: str, obj: Any, plugin: str) -> None:
        """Register one component (what each hook's `register` callback does).

        A wrong type, bad name or missing declaration raises CatalogError; a name registered twice becomes
        unusable for both, with a message naming both plugins."""
        base, singular = KINDS[kind], kind[:-1]
        if kind == "methods":
            if not isinstance(obj, Method):
                raise CatalogError(
                    f"plugin {plugin!r} passed {obj!r} to register_methods; expected a msabench.Method instance."
                )
        elif not (isinstance(obj, type) and issubclass(obj, base)):
            raise CatalogError(
                f"{singular} {_where(obj)} from plugin {plugin!r} must subclass msabench.{base.__name__}."
            )
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not NAME.match(name):
            raise CatalogError(
                f"{singular} {_where(obj)} from plugin {plugin!r} has name {name!r}: "
                f"set a kebab-case name such as 'my-{singular}'."
            )
        _check_declarations(kind, obj, plugin)
        registry = self.registries[kind]
        if name in registry or name in registry.unusable:
            first = (
                f"plugin {registry.plugin(name)!r} ({_where(registry[name])})" if name in registry else "another plugin"
            )
            why = (
                f"{singular} {name!r} is registered twice: by {first} and by plugin {plugin!r} ({_where(obj)}), so "
                f"neither is used. Rename one, or set MSABENCH_LOAD_PLUGINS to skip one of the plugins."
            )
            registry.disable(name, why)
            self.problem(plugin, why)
            return
        registry.entries[name] = (obj, plugin)

    def validate(self) -> None:
        """Check every method's references, components and hyper-parameters; a method that fails is unusable."""
        for name in list(self.methods):
            method, plugin = self.methods[name], self.methods.plugin(name)
            try:
                self.check_method(method, f"method {name!r} (plugin {plugin!r})")
            except CatalogError as error:
                self.methods.disable(name, str(error))
                self.problem(plugin, str(error))
        for name in list(self.methods):  # stages name other methods: checked once every method has been
            method, plugin = self.methods[name], self.methods.plugin(name)
            try:
                self.check_stages(method, f"method {name!r} (plugin {plugin!r})")
            except CatalogError as error:
                self.methods.disable(name, str(error))
                self.problem(plugin, str(error))

    def check_stages(self, method: Method, where: str | None = None) -> None:
        """Each stage names a usable method without stages of its own that has the same encoder for the modality
        the stage starts; one stage per modality."""
        where = where or f"method {method.name!r}"
        seen: set[str] = set()
        for stage in method.stages:
            if stage.modality not in method.encoders:
                raise CatalogError(
                    f"{where}: stage {stage.method!r} starts its {stage.modality!r} encoder, but the method encodes "
                    f"{', '.join(method.encoders)}."
                )
            if stage.modality in seen:
                raise CatalogError(f"{where}: two stages start its {stage.modality!r} encoder; keep one.")
            seen.add(stage.modality)
            if stage.method == method.name:
                raise CatalogError(f"{where}: a method cannot be its own stage.")
            earlier = self.methods[stage.method]  # unknown or unusable: raises, saying why
            if earlier.stages:
                raise CatalogError(
                    f"{where}: its stage {stage.method!r} has stages of its own "
                    f"({', '.join(s.method for s in earlier.stages)}); stages of stages are not supported: "
                    "list every earlier run as a stage of the final method."
                )
            if earlier.encoders.get(stage.modality) != method.encoders[stage.modality]:
                raise CatalogError(
                    f"{where}: stage {stage.method!r} encodes {stage.modality} with "
                    f"{earlier.encoders.get(stage.modality)!r}, the method with {method.encoders[stage.modality]!r}; "
                    "a checkpoint starts only the same encoder."
                )

    def check_method(self, method: Method, where: str) -> None:
        """A registered method's references resolve, its components fit together on every dataset it has settings
        for, and its metrics are the family's."""
        self._check_references(method, where)
        self.check_components(method, where)
        for name in method.dataset_encoders:
            self.check_components(method.for_dataset(name), f"{where} on {name}")
        for dataset, values in [(None, method.hparams), *method.overrides.items()]:
            try:
                self.check_hparams(method if dataset is None else method.for_dataset(dataset), dict(values))
            except CatalogError as error:
                raise CatalogError(f"{where}: {error}") from None
        _check_metrics(method, where)

    def _check_references(self, method: Method, where: str) -> None:
        refs = [("encoders", encoder) for encoder in method.encoders.values()]
        refs += [("encoders", encoder) for swaps in method.dataset_encoders.values() for encoder in swaps.values()]
        refs += [("fusions", method.fusion), ("objectives", method.objective)]
        for kind, ref in refs:
            registry = self.registries[kind]
            if ref in registry.unusable:
                raise CatalogError(f"{where} names {kind[:-1]} {ref!r}, which is unusable: {registry.unusable[ref]}")
            if ref not in registry:
                close = difflib.get_close_matches(ref, registry, n=3)
                hint = f" Did you mean: {', '.join(close)}?" if close else " Is the plugin that provides it installed?"
                if os.environ.get("MSABENCH_LOAD_PLUGINS") is not None:
                    hint += (
                        f" (MSABENCH_LOAD_PLUGINS={os.environ['MSABENCH_LOAD_PLUGINS']!r} is set: it may be left out.)"
                    )
                raise CatalogError(f"{where} names {kind[:-1]} {ref!r}, which no plugin registers.{hint}")

    def check_components(self, method: Method, where: str | None = None) -> None:
        """The encoders, fusion and objective of a method fit together."""
        where = where or f"method {method.name!r}"
        fusion, objective = self.fusions[method.fusion], self.objectives[method.objective]
        if fusion.modalities is not None and set(method.encoders) != set(fusion.modalities):
            raise CatalogError(
                f"{where}: fusion {method.fusion!r} fuses {', '.join(fusion.modalities)}; "
                f"the method encodes {', '.join(method.encoders)}."
            )
        for modality, name in method.encoders.items():
            if self.encoders[name].returns != fusion.accepts:
                raise CatalogError(
                    f"{where}: encoder {name!r} ({modality}) returns a {self.encoders[name].returns}, but fusion "
                    f"{method.fusion!r} takes a {fusion.accepts} per modality. "
                    f"Choose an encoder that returns a {fusion.accepts}."
                )
        if missing := [key for key in objective.needs if key not in fusion.produces]:
            raise CatalogError(
                f"{where}: objective {method.objective!r} needs outputs {missing} that fusion {method.fusion!r} does "
                f"not produce (it produces {list(fusion.produces)}). "
                "Use an objective that needs only those, or a fusion that produces them."
            )
        if unsupported := [task for task in method.tasks if task not in objective.tasks]:
            raise CatalogError(
                f"{where}: objective {method.objective!r} does not support {unsupported} tasks "
                f"(only {list(objective.tasks)})."
            )
        if method.batches not in BATCHES:
            raise CatalogError(f"{where}: batches={method.batches!r}; use one of {', '.join(BATCHES)}.")
        contextual = [f"encoder {name!r}" for name in method.encoders.values() if self.encoders[name].contextual]
        contextual += [f"fusion {method.fusion!r}"] if fusion.contextual else []
        if contextual and method.batches != "groups":
            raise CatalogError(
                f"{where}: {' and '.join(contextual)} read the other samples of each sample's group, which only "
                'batches of whole groups hold: set batches="groups" on the method.'
            )

    def check(self, method: Method, dataset: type[Dataset] | Dataset) -> None:
        """The method can run on the dataset: the task matches and every encoder's input is provided."""
        self.check_components(method)
        if dataset.task.kind not in method.tasks:
            raise CatalogError(
                f"method {method.name!r} handles {'/'.join(method.tasks)} tasks; "
                f"dataset {dataset.name!r} is a {dataset.task.kind} task."
            )
        key = method.key_metric_for(dataset)
        if key is not None and key not in FAMILIES[dataset.task.family]:
            raise CatalogError(
                f"method {method.name!r} selects on {key!r}, which {dataset.task.family} datasets do "
                f"not report (they report {', '.join(FAMILIES[dataset.task.family])})."
            )
        if method.batches == "groups" and dataset.groups is None:
            grouped = [name for name in self.datasets if self.datasets[name].groups is not None]
            raise CatalogError(
                f"method {method.name!r} trains on whole groups of samples (batches='groups', e.g. the utterances "
                f"of a video), but dataset {dataset.name!r} declares no groups; datasets with groups: "
                f"{', '.join(grouped) or 'none installed'}."
            )
        if unreported := [key for key in method.metrics if key not in FAMILIES[dataset.task.family]]:
            raise CatalogError(
                f"method {method.name!r} reports {', '.join(unreported)}, which {dataset.task.family} datasets do not "
                f"have (they report {', '.join(FAMILIES[dataset.task.family])})."
            )
        borrowed = dataset.hparams_from
        if borrowed is not None and borrowed not in self.datasets and borrowed not in method.overrides:
            raise CatalogError(
                f"dataset {dataset.name!r} takes its hyper-parameters from {borrowed!r}, which is neither an installed "
                f"dataset nor one method {method.name!r} has settings for{_close(borrowed, self.datasets)}"
            )
        for modality, name in method.encoders.items():
            key = input_key(self.encoders[name], modality)
            if key not in dataset.inputs:
                raise CatalogError(
                    f"method {method.name!r} encodes {modality} with encoder {name!r}, which reads input {key!r}; "
                    f"dataset {dataset.name!r} provides {', '.join(dataset.inputs)}. "
                    f"Choose another encoder with --encoder {modality}=<name> (see `msabench list encoders`)."
                )

    def check_hparams(self, method: Method, hparams: dict[str, Any]) -> None:
        """Every section names arguments its component accepts, and the training settings have valid values
        (checked before data loads)."""
        sections = [*method.encoders, "fusion", "objective", "train"]
        for section, values in hparams.items():
            if section not in sections:
                raise CatalogError(
                    f"method {method.name!r} has no hyper-parameter section {section!r}{_close(section, sections)} "
                    f"Sections: {', '.join(sections)}."
                )
            if not isinstance(values, dict):
                raise CatalogError(
                    f"method {method.name!r}: hyper-parameter section {section!r} must map names to values, "
                    f"not {values!r}."
                )
        check_train(hparams.get("train", {}), f"method {method.name!r}")
        parts = [(self.encoders[name], f"encoder {name!r}", modality) for modality, name in method.encoders.items()]
        parts += [(self.fusions[method.fusion], f"fusion {method.fusion!r}", "fusion")]
        parts += [(self.objectives[method.objective], f"objective {method.objective!r}", "objective")]
        for cls, what, section in parts:
            check_arguments(cls, what, section, 2 if section == "fusion" else 1, hparams.get(section, {}))

    @contextlib.contextmanager
    def active(self) -> Iterator[Catalog]:
        """Make this the catalog `lookup` answers from (while it builds a model, and in the conformance kit)."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def build(self, method: Method, data: Data, hparams: dict[str, Any]) -> tuple[Model, Objective]:
        """The model (encoders + fusion) and objective of a method for loaded data."""
        with self.active():
            return self._build(method, data, hparams)

    def _build(self, method: Method, data: Data, hparams: dict[str, Any]) -> tuple[Model, Objective]:
        specs = data.specs
        encoders, inputs = {}, {}
        for modality, name in method.encoders.items():
            cls = self.encoders[name]
            key = input_key(cls, modality)
            if key not in specs:
                raise CatalogError(
                    f"encoder {name!r} reads input {key!r} for {modality}; {data.name} provides {', '.join(specs)}."
                )
            encoders[modality] = _construct(cls, f"encoder {name!r}", modality, specs[key], **hparams.get(modality, {}))
            inputs[modality] = key
        in_dims = {modality: encoder.out_dim for modality, encoder in encoders.items()}
        fusion_cls, objective_cls = self.fusions[method.fusion], self.objectives[method.objective]
        fusion = _construct(
            fusion_cls, f"fusion {method.fusion!r}", "fusion", in_dims, data.task, **hparams.get("fusion", {})
        )
        objective = _construct(
            objective_cls, f"objective {method.objective!r}", "objective", data.task, **hparams.get("objective", {})
        )
        if method.batches == "groups" and data.groups is None:
            raise CatalogError(f"method {method.name!r} trains on whole groups of samples; {data.name} has no groups.")
        return Model(encoders, inputs, fusion, groups=data.groups if method.batches == "groups" else None), objective

    def describe(self, method: Method) -> dict[str, Any]:
        """What a result records about its method, so leaderboards need nothing but result files."""
        plugin = self.methods.plugin(method.name) if method.name in self.methods else "unknown"
        return {
            "paper": method.paper,
            "url": method.url,
            "encoders": dict(method.encoders),
            "fusion": method.fusion,
            "objective": method.objective,
            "key_metric": method.key_metric,
            "plugin": plugin,
            "distribution": self.plugin_distributions.get(plugin, ("unknown", ""))[0],
            "reported": [{**asdict(r), "metrics": dict(r.metrics)} for r in method.reported],
            **({"metrics": list(method.metrics)} if method.metrics else {}),
            **({"batches": method.batches} if method.batches != "samples" else {}),
        }

    def distributions(self, method: Method) -> dict[str, str]:
        """{distribution: version} of every plugin the method's components come from."""
        plugins = {self.methods.plugin(method.name)} if method.name in self.methods else set()
        plugins |= {self.encoders.plugin(name) for name in method.encoders.values()}
        plugins |= {self.fusions.plugin(method.fusion), self.objectives.plugin(method.objective)}
        found = (self.plugin_distributions.get(plugin, ("unknown", "")) for plugin in plugins)
        return {dist: version for dist, version in sorted(found) if dist != "unknown"}


def lookup(kind: str, name: str) -> Any:
    """Another registered component, by kind (``"fusions"``, ``"encoders"``, ...) and name: the sanctioned way for a
    composite component to find the one it wraps (e.g. a fusion named in its hyper-parameters), from its
    constructor. It answers from the catalog that is building the model, with the catalog's usual errors (unknown
    names get suggestions)."""
    catalog = _ACTIVE.get()
    if catalog is None:
        raise CatalogError(
            f"msabench.lookup({kind!r}, {name!r}) answers while a catalog builds a model (Catalog.build, or inside "
            "`with catalog.active():`); build this component through the catalog."
        )
    if kind not in catalog.registries:
        raise CatalogError(f"msabench.lookup: unknown kind {kind!r}; use one of {', '.join(catalog.registries)}.")
    return catalog.registries[kind][name]


def _check_metrics(method: Method, where: str) -> None:
    """The metrics a method reports (its paper's numbers, `Method.metrics`) and selects on are known ones, and it
    selects only on a metric it reports."""
    for reported in method.reported:
        if strange := set(reported.metrics) - set(METRICS):
            raise CatalogError(
                f"{where} reports unknown metrics {sorted(strange)} for {reported.dataset!r}. "
                f"Known: {', '.join(METRICS)}."
            )
    selected = {key for key in (method.key_metric, *method.key_metrics.values()) if key is not None}
    for key in sorted(selected):
        if key not in METRICS:
            raise CatalogError(f"{where} selects on unknown metric {key!r}. Known: {', '.join(METRICS)}.")
    if unknown := [key for key in method.metrics if key not in METRICS]:
        raise CatalogError(f"{where} reports unknown metrics {unknown}. Known: {', '.join(METRICS)}.")
    if method.metrics and (unreported := selected - set(method.metrics)):
        raise CatalogError(
            f"{where} selects on {sorted(unreported)}, which it does not report (its metrics: "
            f"{', '.join(method.metrics)}); select on a metric it reports, or on the validation loss."
        )


def input_key(encoder: type[Encoder], modality: str) -> str:
    """The batch key an encoder reads for a modality."""
    return modality if encoder.consumes == "features" else encoder.consumes


def _close(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f". Did you mean: {', '.join(close)}?" if close else "."


def _construct(cls: type, what: str, section: str, *args: Any, **hparams: Any) -> Any:
    check_arguments(cls, what, section, len(args), hparams)
    try:
        return cls(*args, **hparams)
    except (ValueError, TypeError) as error:  # a constructor refusing a value: one line, naming where it is set
        settings = json.dumps(hparams, default=str)
        raise CatalogError(f"{what} refused its hyper-parameters (section {section!r}: {settings}): {error}") from error


def _check_declarations(kind: str, obj: Any, plugin: str) -> None:
    where = f"{kind[:-1]} {obj.name!r} (plugin {plugin!r})"
    problems = []
    if kind == "datasets":
        if not isinstance(getattr(obj, "task", None), Task):
            problems.append("set `task = Task(...)`")
        if not getattr(obj, "inputs", None):
            problems.append("list its `inputs`")
    elif kind == "encoders" and obj.returns not in ("vector", "sequence"):
        problems.append(f"`returns` is {obj.returns!r}; use 'vector' or 'sequence'")
    elif kind == "encoders" and obj.contextual and obj.fingerprint is not Encoder.fingerprint:
        problems.append(
            "it is contextual and defines fingerprint(): frozen encoders with a fingerprint are run once per split, "
            "sample by sample, without their groups; a contextual encoder must not define one"
        )
    elif kind == "fusions" and obj.accepts not in ("vector", "sequence"):
        problems.append(f"`accepts` is {obj.accepts!r}; use 'vector' or 'sequence'")
    elif kind == "fusions" and "prediction" not in obj.produces:
        problems.append("`produces` must include 'prediction'")
    if problems:
        raise CatalogError(f"{where}: {'; '.join(problems)}.")


def _where(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
