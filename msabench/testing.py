"""The conformance kit for plugin authors, and tiny synthetic data to run it on.

In a plugin's tests::

    import msabench_myplugin
    from msabench.testing import parametrize_with_checks

    @parametrize_with_checks(msabench_myplugin)
    def test_conformance(check):
        check()

Each check is its own test id (``pytest -k check_method_fits_two_steps``). The same checks run
from the command line as ``msabench check <plugin>``. Nothing is downloaded: encoders,
fusions and objectives are built with their ``tiny`` keyword arguments on `TinyMSA`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from msabench.catalog import KINDS, Catalog, input_key
from msabench.components import Batch, Callback, Data, Dataset, Encoder, InputSpec, Method, Task, merge
from msabench.errors import CatalogError, PluginError
from msabench.metrics import FAMILIES
from msabench.mult import MulTDataset
from msabench.pickles import write_pickle
from msabench.plugins import ENTRY_POINT_GROUP, get_plugin_manager
from msabench.protocol import Protocol
from msabench.results import RunResult
from msabench.runtime import seed_everything
from msabench.synthetic import SyntheticImageText, SyntheticMMSA, SyntheticMulT
from msabench.train import assemble, fit, resolve_hparams


class TinyMSA(SyntheticMMSA):
    """A few dozen synthetic samples with every MMSA input and unimodal labels; loads in milliseconds."""

    name = "tiny-msa"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    labels = ("label", "label_T", "label_A", "label_V")
    dims = {"text": 16, "audio": 4, "vision": 6}
    sizes = {"train": 32, "valid": 16, "test": 16}
    lengths = {"text": 10, "audio": 8, "vision": 6}
    files = {"tiny-msa/Processed/unaligned.pkl": None}

    def load(self, inputs: Iterable[str] | None = None) -> Data:  # every input, as SyntheticMMSA.load
        provenance = {"source": "generated", "files": {}, "verified": True}
        return self.from_mmsa(self.generate(), provenance, where="generated tiny-msa")


class TinyMSAAligned(TinyMSA):
    """TinyMSA with audio and vision aligned to the text tokens (MMSA's aligned layout: no *_lengths keys)."""

    name = "tiny-msa-aligned"
    lengths = {"text": 10, "audio": 10, "vision": 10}
    aligned = True
    files = {"tiny-msa-aligned/Processed/aligned.pkl": None}


class TinyIEMOCAP(SyntheticMulT):
    """A few dozen samples in MulT's IEMOCAP layout (four binary emotions, front-padded, no ids); loads in ms."""

    name = "tiny-iemocap"
    dims = {"text": 8, "audio": 4, "vision": 6}
    sizes = {"train": 32, "valid": 16, "test": 16}
    lengths = {"text": 10, "audio": 8, "vision": 6}
    files = {"tiny-iemocap/iemocap_data_noalign.pkl": None}

    def load(self) -> Data:
        provenance = {"source": "generated", "files": {}, "verified": True}
        return self.from_mult(self.generate(), provenance, where="generated tiny-iemocap")


class TinyImageText(SyntheticImageText):
    """A few dozen synthetic tweets with 16 px images, three classes, plus unlabelled samples; loads in milliseconds."""

    name = "tiny-imagetext"
    sizes = {"train": 32, "valid": 16, "test": 16}
    image_size = 16
    words = 6
    n_unlabelled = 6


class TinyMSAGrouped(TinyMSA):
    """TinyMSA with its samples in groups of up to four (``video``, as in `Dataset.groups`), for methods that train on
    whole groups (`Method.batches = "groups"`)."""

    name = "tiny-msa-grouped"
    groups = "video"
    files = {"tiny-msa-grouped/Processed/unaligned.pkl": None}

    def load(self, inputs: Iterable[str] | None = None) -> Data:
        data = super().load(inputs)
        for split in data.splits.values():
            split.tensors["video"] = torch.arange(len(split)) // 4
        return replace(data, groups="video")


TINY_DATASETS: list[type[Dataset]] = [TinyMSA, TinyImageText, TinyIEMOCAP, TinyMSAAligned, TinyMSAGrouped]


def write_tiny_file(dataset: type[Dataset], root: str | Path, *, aligned: bool = False) -> Path:
    """Write a few dozen generated samples where `dataset` (a registered MMSA- or MulT-layout dataset such as
    ``mosi`` or ``iemocap``) expects its file below `root`, with its dims, task and labels: what a test needs to run
    ``msabench run --dataset <name> --data-root <root> --no-verify`` on a file in the real layout. `aligned`
    writes MMSA's aligned layout (audio and vision on the text's steps, no lengths keys)."""
    mult = issubclass(dataset, MulTDataset)
    base = TinyIEMOCAP if mult else (TinyMSAAligned if aligned else TinyMSA)
    attributes = {"name": f"tiny-{dataset.name}", "dims": dict(dataset.dims), "task": dataset.task}
    if not mult:
        attributes |= {"labels": dataset.labels, "language": dataset.language}
    generator = type(f"Tiny{type(dataset).__name__}", (base,), attributes)
    ((relative, _),) = dataset.files.items()
    path = Path(root) / relative
    write_pickle(path, generator(root).generate())
    return path


@functools.cache
def tiny_data(dataset: type[Dataset]) -> Data:
    return dataset(tempfile.gettempdir()).load()


def tiny_hparams(catalog: Catalog, method: Method, dataset: type[Dataset]) -> dict[str, Any]:
    """The method's hyper-parameters with each component's `tiny` arguments and small batches."""
    hparams = method.hparams_for(dataset)
    for modality, name in method.encoders.items():
        merge(hparams.setdefault(modality, {}), catalog.encoders[name].tiny)
    merge(hparams.setdefault("fusion", {}), catalog.fusions[method.fusion].tiny)
    merge(hparams.setdefault("objective", {}), catalog.objectives[method.objective].tiny)
    merge(hparams.setdefault("train", {}), {"batch_size": 8, "eval_batch_size": 8})
    hparams["train"].pop("max_epochs", None)
    return hparams


def tiny_dataset_for(catalog: Catalog, method: Method) -> type[Dataset]:
    for dataset in TINY_DATASETS:
        try:
            catalog.check(method, dataset)
            return dataset
        except CatalogError:
            continue
    raise AssertionError(
        f"no tiny dataset provides what method {method.name!r} needs; add one to msabench.testing.TINY_DATASETS"
    )


# -- the checks ---------------------------------------------------------------------------------


def check_hookimpls_match_specs(plugin: ModuleType) -> None:
    """pluggy accepts the plugin's hook implementations and nothing is left unmatched."""
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    pm.check_pending()


def check_registers_something(plugin: ModuleType) -> None:
    """At least one register_* hook registers at least one thing."""
    assert sum(len(own) for own in _own(plugin).values()) > 0, f"{plugin.__name__} registers nothing"


def check_catalog_accepts_plugin(plugin: ModuleType) -> None:
    """Beside every installed plugin: unique kebab-case names, right base classes, resolvable methods."""
    catalog = _catalog(plugin)
    name = _registered_name(plugin)
    problems = [problem.message for problem in catalog.problems if problem.plugin == name]
    assert not problems, "; ".join(problems)


def check_dataset_schema(plugin: ModuleType) -> None:
    """Datasets declare task, inputs, labels and where their files come from (nothing is downloaded)."""
    for dataset in _own(plugin)["datasets"]:
        assert dataset.__doc__, f"dataset {dataset.name!r} needs a docstring (shown by `msabench list`)"
        assert dataset.task.kind in ("regression", "classification", "multilabel"), dataset.task
        named = "path" in dataset.identity_options  # it reads the file the user names (mmsa-custom)
        assert dataset.synthetic or ((dataset.files or named) and dataset.source), (
            f"dataset {dataset.name!r} must declare `files` (or take a path option) and `source`"
        )
        if dataset.task.kind in ("classification", "multilabel"):
            assert dataset.task.classes, f"dataset {dataset.name!r}: a {dataset.task.kind} task needs class names"


def check_encoder_output_shape(plugin: ModuleType) -> None:
    """Each encoder, built tiny, maps a tiny batch to [B, out_dim] (or [B, L, out_dim] for sequences)."""
    for encoder in _own(plugin)["encoders"]:
        data, key = _tiny_input(encoder)
        seed_everything(0)
        module = encoder(data.specs[key], **encoder.tiny)
        split = data.splits["train"]
        batch = next(split.batches(4))
        x = (
            module.preprocess(split.raw[key][:4]) if key in split.raw else batch[key]
        )  # raw inputs: the encoder's own preprocessing
        output = module(x, batch.get(f"{_modality(encoder, key)}_lengths"))
        expected = 2 if encoder.returns == "vector" else 3
        assert output.dim() == expected and output.shape[0] == 4 and output.shape[-1] == module.out_dim, (
            f"encoder {encoder.name!r} returned {tuple(output.shape)}; "
            f"expected {'[4, out_dim]' if expected == 2 else '[4, L, out_dim]'} with out_dim {module.out_dim}"
        )
        assert torch.isfinite(output).all(), f"encoder {encoder.name!r} returned non-finite values"


def check_fusion_output_shape(plugin: ModuleType) -> None:
    """Each fusion maps per-modality features to a dict with a [B, out_dim] (or [B]) prediction and what it declares."""
    dims = {"text": 8, "audio": 4, "vision": 6, "image": 6}
    for fusion in _own(plugin)["fusions"]:
        in_dims = (
            {m: dims.get(m, 5) for m in fusion.modalities}
            if fusion.modalities is not None
            else {m: dims[m] for m in ("text", "audio", "vision")}
        )
        for task in (
            Task("regression", "mosi", (-3.0, 3.0)),
            Task("classification", "classification", classes=("negative", "neutral", "positive")),
        ):
            out_dim = task.out_dim
            seed_everything(0)
            with _catalog(plugin).active():  # a composite fusion looks up the one it wraps (msabench.lookup)
                module = fusion(in_dims, task, **fusion.tiny)
            lengths = torch.tensor([5, 3, 1, 5])
            lens: dict[str, torch.Tensor | None]
            if fusion.accepts == "vector":
                features, lens = {m: torch.randn(4, d) for m, d in in_dims.items()}, {m: None for m in in_dims}
            else:
                features, lens = {m: torch.randn(4, 5, d) for m, d in in_dims.items()}, {m: lengths for m in in_dims}
            outputs = module(features, lens)
            assert set(fusion.produces) <= set(outputs), (
                f"fusion {fusion.name!r} declares {fusion.produces} but returned {sorted(outputs)}"
            )
            prediction = outputs["prediction"]
            assert prediction.shape[0] == 4 and prediction.reshape(4, -1).shape[1] == out_dim, (
                f"fusion {fusion.name!r}: prediction shape {tuple(prediction.shape)} for out_dim {out_dim}"
            )


def check_objective_finite_with_grad(plugin: ModuleType) -> None:
    """On each of the plugin's methods (or a plain prediction), the loss is a finite scalar whose gradient reaches
    the model."""
    catalog = _catalog(plugin)
    own = _own(plugin)
    methods = [m for m in own["methods"]] or [
        m for m in (catalog.methods[n] for n in catalog.methods) if m.objective in {o.name for o in own["objectives"]}
    ]
    for method in methods:
        dataset = tiny_dataset_for(catalog, method)
        data = tiny_data(dataset)
        hparams = resolve_hparams(tiny_hparams(catalog, method, dataset), data, 0, Protocol())
        run = assemble(method, data, catalog=catalog, seed=0, hparams=hparams, device="cpu")  # as fit() builds it
        model, objective = run.model, run.objective
        generator = torch.Generator().manual_seed(0)
        batch = next(run.data.splits["train"].batches(8, shuffle=True, generator=generator, groups=model.groups))
        losses = objective(model(batch), batch)
        total = losses["total"]
        assert total.dim() == 0 and torch.isfinite(total), f"{method.name}: total loss {total}"
        assert all(torch.isfinite(v).all() for v in losses.values()), f"{method.name}: non-finite loss terms {losses}"
        total.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{method.name}: no gradient reaches the model"
    for objective_cls in own["objectives"]:
        if objective_cls.needs == ("prediction",) and "regression" in objective_cls.tasks:
            task = Task("regression", "mosi", (-3.0, 3.0))
            prediction = torch.randn(6, 1, requires_grad=True)
            batch = Batch(
                label=torch.randn(6),
                index=torch.arange(6),
                label_T=torch.randn(6),
                label_A=torch.randn(6),
                label_V=torch.randn(6),
            )
            losses = objective_cls(task, **objective_cls.tiny)({"prediction": prediction}, batch)
            losses["total"].backward()
            assert torch.isfinite(losses["total"]) and prediction.grad is not None, f"objective {objective_cls.name!r}"


def check_method_fits_two_steps(plugin: ModuleType) -> None:
    """fit() runs each method for two epochs on tiny data, on the CPU, with finite losses and all the metrics it
    reports."""
    for method, result in _fits(plugin).items():
        assert result.epochs == 2, f"{method}: ran {result.epochs} epochs"
        assert all(math.isfinite(epoch["train"]["total"]) for epoch in result.history), (
            f"{method}: non-finite training loss"
        )
        expected = result.method_info.get("metrics") or _family_keys(result)  # those it reports (Method.metrics)
        assert set(result.metrics) == set(expected), f"{method}: metrics {sorted(result.metrics)}"
        assert len(result.predictions["predictions"]) == len(result.predictions["ids"]) > 0


def check_method_deterministic(plugin: ModuleType) -> None:
    """The same seed gives the same losses and predictions on the CPU (NaN metrics, e.g. the Corr of a constant
    prediction, count as equal)."""
    first = _fits(plugin)
    _fits.cache_clear()
    second = _fits(plugin)
    for method in first:
        assert _comparable(first[method].history) == _comparable(second[method].history), (
            f"{method}: training differs between two runs with one seed"
        )
        assert first[method].predictions == second[method].predictions, (
            f"{method}: predictions differ between two runs with one seed"
        )


class _Interrupted(Exception):
    """Raised by `_StopAt` to cut a run short, as a kill would."""


class _StopAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_start(self, run, epoch):
        if epoch == self.epoch:
            raise _Interrupted


def check_method_resumes(plugin: ModuleType) -> None:
    """A run interrupted after its first epoch and started again from its resume state gives the numbers of the
    run that was never interrupted (all of its state is saved: Python-side state in get_extra_state)."""
    catalog = _catalog(plugin)
    whole = _fits(plugin)
    for method in _own(plugin)["methods"]:
        dataset = tiny_dataset_for(catalog, method)
        train = functools.partial(
            fit, method, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=2), device="cpu"
        )
        hparams = tiny_hparams(catalog, method, dataset)
        with tempfile.TemporaryDirectory() as folder:
            state = Path(folder) / "seed-1111.resume.pt"
            with contextlib.suppress(_Interrupted):
                train(tiny_data(dataset), hparams=hparams, state=state, callbacks=(_StopAt(2),))
            assert state.is_file(), f"{method.name}: no resume state after epoch 1"
            resumed = train(tiny_data(dataset), hparams=hparams, state=state)
        assert _comparable(resumed.history) == _comparable(whole[method.name].history), (
            f"{method.name}: a resumed run trains differently"
        )
        assert resumed.predictions == whole[method.name].predictions, (
            f"{method.name}: a resumed run predicts differently"
        )


def check_result_round_trips_json(plugin: ModuleType) -> None:
    """A RunResult survives save -> load unchanged."""
    for method, result in _fits(plugin).items():
        with tempfile.TemporaryDirectory() as folder:
            path = result.save(Path(folder) / "seed.json")
            loaded = RunResult.load(path)
        assert _comparable(loaded.to_dict()) == _comparable(result.to_dict()), f"{method}: result changed through JSON"


def check_installed(plugin: ModuleType) -> None:
    """The plugin is found through the `msabench` entry-point group."""
    modules = {ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert plugin.__name__ in modules, (
        f"{plugin.__name__} is not an installed msabench entry point; "
        "add [project.entry-points.msabench] to its pyproject.toml and pip install it"
    )


CHECKS: list[Callable[[ModuleType], None]] = [
    check_hookimpls_match_specs,
    check_registers_something,
    check_catalog_accepts_plugin,
    check_dataset_schema,
    check_encoder_output_shape,
    check_fusion_output_shape,
    check_objective_finite_with_grad,
    check_method_fits_two_steps,
    check_method_deterministic,
    check_method_resumes,
    check_result_round_trips_json,
]


def checks(plugin: ModuleType, installed: bool = True) -> Iterator[tuple[str, Callable[[], None]]]:
    for check in [*CHECKS, *([check_installed] if installed else [])]:
        yield check.__name__, functools.partial(check, plugin)


def parametrize_with_checks(plugin: ModuleType, installed: bool = True):
    """A pytest decorator: one test per check, its id the check's name."""
    import pytest

    names, calls = zip(*checks(plugin, installed), strict=True)
    return pytest.mark.parametrize("check", calls, ids=names)


def run_checks(name: str) -> list[tuple[str, str | None]]:
    """Run every check on an installed plugin (entry-point or distribution name): [(check, error or None)]."""
    entry_points = [
        ep
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if name in (ep.name, ep.dist.name if ep.dist else None)
    ]
    if not entry_points:
        installed = ", ".join(sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)))
        raise PluginError(f"no installed msabench plugin is called {name!r}. Installed: {installed}.")
    outcomes: list[tuple[str, str | None]] = []
    for ep in entry_points:
        try:
            module = ep.load()
        except Exception as error:
            raise PluginError(
                f"msabench plugin {ep.name!r} cannot be imported ({type(error).__name__}: {error}), so none of its "
                "checks can run. Fix or reinstall it, then run `msabench check` again."
            ) from None
        for check_name, call in checks(module):
            try:
                call()
                outcomes.append((check_name, None))
            except Exception as error:  # a failed check is reported, not raised
                outcomes.append((check_name, f"{type(error).__name__}: {error}"))
    return outcomes


# -- helpers ------------------------------------------------------------------------------------


def _catalog(plugin: ModuleType) -> Catalog:
    pm = get_plugin_manager()
    if not pm.is_registered(plugin):
        pm.register(plugin)
    return Catalog.from_plugins(pm)


def _registered_name(plugin: ModuleType) -> str | None:
    pm = get_plugin_manager()
    if not pm.is_registered(plugin):
        pm.register(plugin)
    return pm.get_name(plugin)


def _own(plugin: ModuleType) -> dict[str, list]:
    """What this plugin alone registers, by kind."""
    own: dict[str, list] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        hook = getattr(plugin, f"register_{kind}", None)
        if hook is not None:
            hook(own[kind].append)
    return own


@functools.cache
def _fits(plugin: ModuleType) -> dict[str, RunResult]:
    catalog = _catalog(plugin)
    results = {}
    for method in _own(plugin)["methods"]:
        dataset = tiny_dataset_for(catalog, method)
        results[method.name] = fit(
            method,
            tiny_data(dataset),
            catalog=catalog,
            seed=1111,
            protocol=Protocol(max_epochs=2),
            hparams=tiny_hparams(catalog, method, dataset),
            device="cpu",
        )
    return results


def _tiny_input(encoder: type[Encoder]) -> tuple[Data, str]:
    for dataset in TINY_DATASETS:
        for modality in ("text", "audio", "vision"):
            key = input_key(encoder, modality)
            if key in dataset.inputs:
                return tiny_data(dataset), key
    raise AssertionError(f"no tiny dataset provides input {encoder.consumes!r} for encoder {encoder.name!r}")


def _modality(encoder: type[Encoder], key: str) -> str:
    return key if encoder.consumes == "features" else key.split("_")[0]


def _family_keys(result: RunResult) -> tuple[str, ...]:
    return FAMILIES[result.task["family"]]


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


__all__ = [
    "TINY_DATASETS",
    "TinyIEMOCAP",
    "TinyImageText",
    "TinyMSA",
    "TinyMSAAligned",
    "TinyMSAGrouped",
    "InputSpec",
    "check_installed",
    "checks",
    "parametrize_with_checks",
    "run_checks",
    "tiny_data",
    "tiny_hparams",
    "write_tiny_file",
]
