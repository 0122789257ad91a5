"""Method.with_components: a swapped component starts from its own defaults, learning rate included."""

from msabench import Method

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
