"""Method.with_components: a swapped component starts from its own defaults, learning rate included."""

from dataclasses import replace

from msabench import Method, hookimpl

RECIPE = Method(
    name="recipe",
    paper="test",
    encoders={"text": "bert-text", "audio": "transformer-seq", "vision": "transformer-seq"},
    fusion="some-fusion",
    objective="l1",
    hparams={
        "train": {"lr": 1e-4, "lr_groups": {"encoders.text": 1e-5, "encoders.audio.project": 1e-3, "objective": 1e-2}},
        "text": {"finetune": True},
        "audio": {"layers": 1},
    },
    overrides={
        "mosei": {"train": {"lr_groups": {"encoders.text": 2e-5}}, "text": {"finetune": False}, "audio": {"layers": 3}}
    },
)


def test_swapped_encoder_drops_its_section_and_lr_groups():
    swapped = RECIPE.with_components({"text": "transformer-seq"})
    assert swapped.encoders["text"] == "transformer-seq"
    assert "text" not in swapped.hparams and "text" not in swapped.overrides["mosei"]
    assert swapped.hparams["train"]["lr_groups"] == {"encoders.audio.project": 1e-3, "objective": 1e-2}
    assert swapped.overrides["mosei"]["train"]["lr_groups"] == {}
    assert swapped.hparams["audio"] == {"layers": 1} and swapped.overrides["mosei"]["audio"] == {"layers": 3}
    assert RECIPE.hparams["train"]["lr_groups"]["encoders.text"] == 1e-5  # the registered recipe is unchanged


def test_swapped_objective_drops_its_lr_group_only():
    swapped = RECIPE.with_components(objective="mse")
    assert swapped.hparams["train"]["lr_groups"] == {"encoders.text": 1e-5, "encoders.audio.project": 1e-3}
    assert swapped.with_components({"text": "bert-text"}).hparams["text"] == {
        "finetune": True
    }  # same name: nothing swapped


WORDS = Method(
    name="words",
    paper="test",
    encoders={"text": "bert-text", "audio": "lstm-seq"},
    fusion="some-fusion",
    objective="l1",
    hparams={"text": {"finetune": True}, "audio": {"hidden": 8}, "train": {"lr_groups": {"encoders.text": 1e-5}}},
    overrides={"iemocap": {"text": {"hidden": 16}}, "mosei": {"text": {"finetune": False}}},
    dataset_encoders={"iemocap": {"text": "lstm-seq"}},
)


class Named:
    def __init__(self, name, hparams_from=None):
        self.name, self.hparams_from = name, hparams_from


def test_for_dataset_swaps_the_encoders_a_dataset_needs_and_keeps_its_overrides():
    on_iemocap = WORDS.for_dataset(Named("iemocap"))
    assert on_iemocap.encoders == {"text": "lstm-seq", "audio": "lstm-seq"} and on_iemocap.dataset_encoders == {}
    assert "text" not in on_iemocap.hparams and on_iemocap.hparams["train"]["lr_groups"] == {}
    assert on_iemocap.hparams_for(Named("iemocap"))["text"] == {"hidden": 16}  # the dataset's own section
    assert WORDS.for_dataset(Named("synthetic-iemocap", "iemocap")).encoders["text"] == "lstm-seq"
    assert WORDS.for_dataset("iemocap").encoders["text"] == "lstm-seq"
    assert WORDS.for_dataset(Named("mosei")) is WORDS  # nothing to swap there
    assert on_iemocap.for_dataset(Named("iemocap")) is on_iemocap  # applied once


def test_catalog_checks_the_encoders_and_sections_a_method_names_per_dataset():
    import msabench_core
    from fakes import Plugin
    from msabench import Catalog, get_plugin_manager

    def catalog_of(method):
        class Extra:
            @hookimpl
            def register_methods(self, register):
                register(method)

        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(msabench_core, name="core")
        pm.register(Plugin())
        pm.register(Extra(), name="extra")
        return Catalog.from_plugins(pm)

    good = Method(
        "on-words",
        "test",
        {"text": "bert-text", "audio": "mean-linear", "vision": "mean-linear"},
        "fake-concat",
        "l1",
        hparams={"text": {"finetune": False}},
        overrides={"iemocap": {"text": {"hidden": 8}}},  # lstm-seq's argument, fine for iemocap only
        dataset_encoders={"iemocap": {"text": "lstm-seq"}},
    )
    assert "on-words" in catalog_of(good).methods
    typo = replace(good, name="typo", dataset_encoders={"iemocap": {"text": "lstm-sequence"}})
    assert "encoder 'lstm-sequence', which no plugin registers" in catalog_of(typo).methods.unusable["typo"]
    wrong = replace(good, name="wrong", overrides={"mosei": {"text": {"hidden": 8}}})  # bert-text has no `hidden`
    assert "cannot take the hyper-parameters of section 'text'" in catalog_of(wrong).methods.unusable["wrong"]
