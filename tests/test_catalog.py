"""The catalog: what plugins register, validated before anything trains."""

import re
from dataclasses import replace

import pytest

import msabench_core
from fakes import TINY, ConcatFusion, MeanEncoder, NeedsShared, Plugin, TinyData
from msabench import (
    Catalog,
    CatalogError,
    Dataset,
    Encoder,
    Method,
    Task,
    UnknownName,
    get_plugin_manager,
    hookimpl,
)
from msabench.plugins import Problem


def assert_problem(catalog, pattern):
    """The catalog reports a problem matching `pattern` (registration problems never raise at build time)."""
    messages = [problem.message for problem in catalog.problems]
    assert any(re.search(pattern, message) for message in messages), messages
    return catalog


def catalog_with(*plugins):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(msabench_core, name="core")
    for plugin in plugins:
        pm.register(plugin)
    return Catalog.from_plugins(pm)


def plugin(**hooks):
    """A plugin object whose register_<kind> hooks register the given things."""

    class Extra:
        pass

    for kind, things in hooks.items():

        def hook(register, things=things):
            for thing in things:
                register(thing)

        hook.__name__ = f"register_{kind}"
        setattr(Extra, f"register_{kind}", staticmethod(hookimpl(hook)))
    return Extra()


def test_valid_plugin_is_catalogued_with_its_plugin_name():
    catalog = catalog_with(Plugin())
    assert "tiny-data" in catalog.datasets and "mean-linear" in catalog.encoders
    assert catalog.methods["tiny"] is TINY
    assert catalog.objectives.plugin("l1") == "core"


def test_hook_register_datasets_rejects_a_class_that_is_not_a_dataset():
    class NotData:
        name = "not-data"

    catalog = assert_problem(
        catalog_with(plugin(datasets=[NotData])), r"dataset .*NotData from plugin .* must subclass msabench.Dataset"
    )
    assert "not-data" not in catalog.datasets and "mosi" in catalog.datasets


def test_hook_register_datasets_requires_task_and_inputs():
    class NoTask(Dataset):
        """No task."""

        name = "no-task"

    assert_problem(
        catalog_with(plugin(datasets=[NoTask])), r"dataset 'no-task'.*set `task = Task\(...\)`; list its `inputs`"
    )


def test_hook_register_datasets_rejects_a_duplicate_name_naming_both_plugins():
    class Again(TinyData):
        """Same name."""

    pattern = r"dataset 'tiny-data' is registered twice: by plugin .*\(fakes.TinyData\) and by plugin .*Again"
    catalog = assert_problem(catalog_with(Plugin(), plugin(datasets=[Again])), pattern)
    with pytest.raises(CatalogError, match=pattern + r".*so neither is used"):
        catalog.datasets["tiny-data"]
    assert catalog.methods["tiny"] is TINY and "mosi" in catalog.datasets  # only the duplicated name stops working


def test_hook_register_encoders_rejects_an_instance_and_a_bad_name():
    catalog = catalog_with(plugin(encoders=[MeanEncoder]), plugin(encoders=[object()]))
    assert_problem(catalog, "must subclass msabench.Encoder")
    assert "mean-linear" in catalog.encoders

    class Badly(Encoder):
        name = "Bad_Name"

    assert_problem(
        catalog_with(plugin(encoders=[Badly])), r"has name 'Bad_Name': set a kebab-case name such as 'my-encoder'"
    )

    class Nameless(Encoder):
        pass

    assert_problem(catalog_with(plugin(encoders=[Nameless])), r"has name None")


def test_hook_register_encoders_checks_returns():
    class Odd(MeanEncoder):
        name = "odd"
        returns = "matrix"

    assert_problem(
        catalog_with(plugin(encoders=[Odd])), r"encoder 'odd'.*`returns` is 'matrix'; use 'vector' or 'sequence'"
    )


def test_hook_register_fusions_requires_a_prediction_output():
    class NoPrediction(ConcatFusion):
        name = "no-prediction"
        produces = ("logits",)

    assert_problem(catalog_with(plugin(fusions=[NoPrediction])), "`produces` must include 'prediction'")


def test_hook_register_objectives_rejects_a_duplicate_of_a_core_objective():
    class L1Again(NeedsShared):
        name = "l1"

    catalog = assert_problem(
        catalog_with(Plugin(), plugin(objectives=[L1Again])), r"objective 'l1' is registered twice: by plugin 'core'"
    )
    with pytest.raises(
        CatalogError,
        match=r"method 'tiny' .* names objective 'l1', which is unusable: objective 'l1' is registered twice",
    ):
        catalog.methods["tiny"]  # a method using the duplicated name is unusable too, and says why
    assert "mse" in catalog.objectives


def test_hook_register_methods_rejects_a_non_method():
    assert_problem(
        catalog_with(plugin(methods=["tiny"])), "passed 'tiny' to register_methods; expected a msabench.Method instance"
    )


def test_hook_register_methods_rejects_a_dangling_reference_with_a_suggestion():
    typo = replace(TINY, name="typo", fusion="fake-conact")
    pattern = (
        r"method 'typo' \(plugin .*\) names fusion 'fake-conact', which no plugin registers. "
        r"Did you mean: fake-concat\?"
    )
    catalog = assert_problem(catalog_with(Plugin(), plugin(methods=[typo])), pattern)
    with pytest.raises(CatalogError, match=pattern):
        catalog.methods["typo"]
    assert catalog.methods["tiny"] is TINY


def test_hook_register_methods_rejects_an_objective_needing_outputs_the_fusion_lacks():
    wrong = replace(TINY, name="wrong", objective="needs-shared")
    assert_problem(
        catalog_with(Plugin(), plugin(methods=[wrong])),
        r"objective 'needs-shared' needs outputs \['shared'\] that fusion 'fake-concat' does not produce",
    )
    right = replace(TINY, name="right", fusion="fake-shared", objective="needs-shared")
    assert "right" in catalog_with(Plugin(), plugin(methods=[right])).methods


def test_hook_register_methods_rejects_unknown_reported_metrics():
    from msabench import Reported

    bad = replace(TINY, name="bad", reported=(Reported("mosi", "Table 1", {"Acc2": 80.0}),))
    assert_problem(catalog_with(Plugin(), plugin(methods=[bad])), r"reports unknown metrics \['Acc2'\]")


def test_a_plugin_that_raises_inside_a_hook_is_named():
    class Broken:
        @hookimpl
        def register_encoders(self, register):
            raise RuntimeError("boom")

    catalog = catalog_with(Plugin(), Broken())
    assert_problem(catalog, r"plugin '.*' failed in register_encoders: RuntimeError: boom.*MSABENCH_LOAD_PLUGINS")
    assert catalog.methods["tiny"] is TINY


def test_unknown_names_suggest_close_matches_and_list_what_exists():
    catalog = catalog_with(Plugin())
    with pytest.raises(UnknownName, match=r"Unknown method 'tiyn'. Did you mean: tiny\? Available: tiny."):
        catalog.methods["tiyn"]
    with pytest.raises(UnknownName, match=r"Unknown dataset 'zzz'. Available: .*synthetic-mosi"):
        catalog.datasets["zzz"]


def test_check_refuses_a_dataset_without_the_encoder_input():
    class TextOnly(TinyData):
        """Text features only."""

        name = "text-only"
        inputs = ("text",)

    catalog = catalog_with(Plugin())
    with pytest.raises(
        CatalogError,
        match=(
            r"encodes audio with encoder 'mean-linear', which reads input 'audio'; dataset 'text-only' provides text. "
            r"Choose another encoder with --encoder audio="
        ),
    ):
        catalog.check(TINY, TextOnly)


def test_check_refuses_a_task_mismatch():
    class Classes(TinyData):
        """Three classes."""

        name = "classes"
        task = Task("classification", "classification", classes=("a", "b", "c"))

    with pytest.raises(
        CatalogError, match="method 'tiny' handles regression tasks; dataset 'classes' is a classification task"
    ):
        catalog_with(Plugin()).check(TINY, Classes)


def test_check_hparams_names_the_component_section_and_accepted_arguments():
    catalog = catalog_with(Plugin())
    with pytest.raises(
        CatalogError,
        match=r"encoder 'mean-linear' cannot take the hyper-parameters of section 'audio'.*'widht'. It accepts: width",
    ):
        catalog.check_hparams(TINY, {"audio": {"widht": 3}})
    catalog.check_hparams(TINY, {"audio": {"width": 3}, "fusion": {"dropout": 0.1}})


def test_build_makes_the_model_from_the_data_shapes():
    catalog = catalog_with(Plugin())
    data = TinyData().load()
    model, objective = catalog.build(TINY, data, {"text": {"width": 5}})
    assert model.encoders["text"].linear.in_features == 8 and model.encoders["text"].out_dim == 5
    assert model.fusion.linear.in_features == 5 + 4 + 4
    batch = next(data.splits["train"].batches(7))
    assert model(batch)["prediction"].shape == (7, 1)
    assert objective(model(batch), batch)["total"].dim() == 0


def test_with_components_swaps_and_drops_the_swapped_sections():
    method = Method(
        "m",
        "p",
        {"text": "a", "audio": "b"},
        "f",
        "o",
        hparams={"text": {"x": 1}, "audio": {"y": 2}, "train": {"lr": 1}},
        overrides={"mosi": {"text": {"x": 3}, "train": {"lr": 2}}},
    )
    swapped = method.with_components({"text": "c"}, objective="o2")
    assert swapped.encoders == {"text": "c", "audio": "b"} and swapped.objective == "o2"
    assert "text" not in swapped.hparams and swapped.hparams["audio"] == {"y": 2}
    assert swapped.overrides == {"mosi": {"train": {"lr": 2}}}
    assert method.hparams["text"] == {"x": 1}  # the registered recipe is untouched


def test_hparams_for_applies_the_dataset_and_its_hparams_from():
    method = Method(
        "m",
        "p",
        {},
        "f",
        "o",
        hparams={"train": {"lr": 1, "batch_size": 8}},
        overrides={"mosi": {"train": {"lr": 2}}, "tiny-data": {"train": {"batch_size": 4}}},
    )

    class LikeMosi(TinyData):
        hparams_from = "mosi"

    assert method.hparams_for(LikeMosi)["train"] == {"lr": 2, "batch_size": 4}
    assert method.hparams_for(TinyData)["train"] == {"lr": 1, "batch_size": 4}


def test_check_hparams_refuses_unknown_sections_and_training_settings():
    catalog = catalog_with(Plugin())
    with pytest.raises(
        CatalogError,
        match=(
            r"method 'tiny' has no hyper-parameter section 'fuison'. Did you mean: fusion, vision\? "
            r"Sections: text, audio, vision, fusion, objective, train"
        ),
    ):
        catalog.check_hparams(TINY, {"fuison": {"dropout": 0.1}})
    with pytest.raises(CatalogError, match=r"unknown training setting train.lrr. Did you mean: lr\?"):
        catalog.check_hparams(TINY, {"train": {"lrr": 5}})


def test_hook_register_methods_rejects_a_typo_in_the_method_hparams():
    typo = replace(TINY, name="typo", overrides={"mosi": {"train": {"batchsize": 4}}})
    assert_problem(
        catalog_with(Plugin(), plugin(methods=[typo])),
        r"method 'typo' \(plugin .*\): .*unknown training setting train.batchsize. Did you mean: batch_size",
    )


def test_check_refuses_a_key_metric_the_dataset_does_not_report():
    from msabench_core.synthetic import SyntheticSIMS

    by_has0 = replace(TINY, key_metric="Acc-2_has0")
    with pytest.raises(CatalogError, match="selects on 'Acc-2_has0', which sims datasets do not report"):
        catalog_with(Plugin()).check(by_has0, SyntheticSIMS)


def test_hook_register_encoders_cannot_be_a_wrapper():
    class Wrapping:
        @hookimpl(wrapper=True)
        def register_encoders(self, register):
            return (yield)

    assert_problem(catalog_with(Wrapping()), "register_encoders cannot be a hook wrapper")


def test_a_constructor_refusing_a_value_is_a_one_line_catalog_error():
    class Picky(ConcatFusion):
        name = "picky"

        def __init__(self, in_dims, task, mode: str = "a"):
            super().__init__(in_dims, task)
            if mode not in ("a", "b"):
                raise ValueError(f"mode must be 'a' or 'b'; got {mode!r}")

    picky = replace(TINY, name="picky", fusion="picky")
    catalog = catalog_with(Plugin(), plugin(fusions=[Picky], methods=[picky]))
    with pytest.raises(
        CatalogError,
        match=(
            r"""fusion 'picky' refused its hyper-parameters \(section 'fusion': \{"mode": "c"\}\): """
            r"mode must be 'a' or 'b'; got 'c'"
        ),
    ):
        catalog.build(picky, TinyData().load(), {"fusion": {"mode": "c"}})
    with pytest.raises(CatalogError, match="train.optimizer must be one of adam, adamw, sgd, adadelta; got 'adamax'"):
        catalog.check_hparams(TINY, {"train": {"optimizer": "adamax"}})


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("lr", "abc", r"train.lr must be a number > 0; got 'abc'. Set it with --set train.lr=VALUE"),
        ("lr", -1, r"train.lr must be a number > 0; got -1"),
        ("lr", float("nan"), r"train.lr must be a number > 0; got nan"),
        ("batch_size", 0, r"train.batch_size must be a whole number >= 1; got 0"),
        ("batch_size", 2.5, r"train.batch_size must be a whole number >= 1; got 2.5"),
        ("batch_size", True, r"train.batch_size must be a whole number >= 1; got True"),
        ("accumulate", 0, r"train.accumulate must be a whole number >= 1"),
        ("plateau_factor", 1.5, r"train.plateau_factor must be a number in \(0, 1\)"),
        ("lr_groups", {"fusion": -1}, r"train.lr_groups\['fusion'\] must map to an lr > 0"),
    ],
)
def test_training_settings_are_checked_for_type_and_range(setting, value, message):
    catalog = catalog_with(Plugin())
    with pytest.raises(CatalogError, match=r"method 'tiny': " + message):
        catalog.check_hparams(TINY, {"train": {setting: value}})


def test_a_method_with_a_bad_setting_is_unusable_and_the_others_work():
    bad = replace(TINY, name="bad-lr", hparams={"train": {"lr": 0}})
    catalog = assert_problem(
        catalog_with(Plugin(), plugin(methods=[bad])), r"method 'bad-lr' .*train.lr must be a number > 0"
    )
    with pytest.raises(CatalogError, match="train.lr must be a number > 0; got 0"):
        catalog.methods["bad-lr"]
    assert catalog.methods["tiny"] is TINY


def test_unknown_names_mention_plugins_that_failed_to_load():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(msabench_core, name="core")
    pm.problems.append(Problem("mult", "msabench plugin 'mult' failed to load: ImportError: no torch.nn.Foo."))
    catalog = Catalog.from_plugins(pm)
    with pytest.raises(UnknownName, match=r"Unknown method 'mult'.*Plugins with problems: mult; see the warnings"):
        catalog.methods["mult"]
