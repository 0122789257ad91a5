"""Lab5's two-stage recipe end to end (one command runs both stages, then the fusion stage from their checkpoints),
and `msabench predict` on test_without_label.txt: predictions in its format, checks of frozen weights and of the
splits a stage-1 encoder was trained on."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from msabench import Catalog, DataError, Protocol, fit, get_plugin_manager
from msabench.cli import cli
from msabench.results import result_path
from msabench_core.language import TINY_CONFIG as BERT_TINY
from msabench_core.vision import TINY_CONFIG as RESNET_TINY
from msabench_lab5.data import Lab5, write_lab5

TINY = {"text": {"config": BERT_TINY, "max_length": 32}, "image": {"config": RESNET_TINY, "image_size": 16}}
STAGE_OF = {"text": "lab5-bert", "image": "lab5-resnet50"}
# The stages' encoders small and random; the fusion stage builds its encoders as the stages did.
SETS = [
    arg
    for section, values in TINY.items()
    for key, value in values.items()
    for arg in ("--set", f"{STAGE_OF[section]}:{section}.{key}={json.dumps(value)}")
]
IMAGE_SETS = [
    arg for i in range(0, len(SETS), 2) if SETS[i + 1].startswith("lab5-resnet50:") for arg in SETS[i : i + 2]
]
PROTOCOL = Protocol(max_epochs=2)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


def stage_one(catalog, data, name, section):
    """A stage-1 run saved where a plain (unchanged) stage run of the command would be."""
    method = catalog.methods[name]
    hparams = method.hparams_for(data)
    hparams[section].update(TINY[section])
    path = result_path("results", data.name, name, 1111, protocol=PROTOCOL.id)
    fit(
        method,
        data,
        catalog=catalog,
        seed=1111,
        protocol=PROTOCOL,
        hparams=hparams,
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    ).save(path)
    return path.with_suffix(".pt")


def command(folder, *extra, method="lab5-concat"):
    return ["run", "-m", method, "-d", "lab5", "--data-root", str(folder), "--seeds", "1111"] + [
        "--max-epochs",
        str(PROTOCOL.max_epochs),
        *extra,
        "--no-progress",
        "-q",
    ]


def test_lab5_two_stages_in_one_command_then_predict(tmp_path, monkeypatch):
    folder = write_lab5(tmp_path / "lab5", n=30, unlabelled=5)
    runner = CliRunner()
    missing = runner.invoke(
        cli,
        command(
            folder, *IMAGE_SETS, "--set", "text.init_from=nowhere.pt", "--set", f"text.config={json.dumps(BERT_TINY)}"
        ),
    )
    assert missing.exit_code != 0 and "nowhere.pt does not exist" in missing.output  # an explicit init_from wins

    done = runner.invoke(cli, command(folder, *SETS))
    assert done.exit_code == 0, done.output
    runs = sorted(path.parent.parent.name.split("+")[0] for path in (tmp_path / "results/lab5").rglob("seed-1111.json"))
    assert runs == ["lab5-bert", "lab5-concat", "lab5-resnet50"]  # both stages ran, then the fusion stage
    (result_file,) = (tmp_path / "results" / "lab5").glob("lab5-concat*/*/seed-1111.json")
    assert result_file.parent.name == PROTOCOL.id
    result = json.loads(result_file.read_text())
    stage1 = result["hparams"]["text"]["init_from"]
    assert stage1.startswith("results/lab5/lab5-bert+") and stage1.endswith(f"/{PROTOCOL.id}/seed-1111.pt")
    assert result["stages"]["text"]["result"] == stage1.replace(".pt", ".json")
    assert result["hparams"]["text"]["config"] == BERT_TINY and result["hparams"]["text"]["freeze"] is True
    started = result["data"]["encoders"]["text"]["fingerprint"]["init_from"]
    assert (
        started["path"] == str((tmp_path / stage1).resolve())
        and started["method"] == "lab5-bert"
        and len(started["sha256"]) == 64
    )
    assert started["splits"]["split"] == {"kind": "stratified", "seed": 42, "fractions": [0.8, 0.1, 0.1]} and set(
        started["splits"]["ids_sha256"]
    ) == {"train", "valid", "test"}
    assert result["hparams"]["image"]["init_from"].startswith("results/lab5/lab5-resnet50+")
    text_checkpoint = tmp_path / stage1
    again = runner.invoke(cli, command(folder, *SETS))
    assert again.exit_code == 0 and again.output.count("done already") == 3

    out = tmp_path / "predictions.txt"
    labelled = runner.invoke(cli, ["predict", "--run", str(result_file), "--data-root", str(folder), "--out", str(out)])
    assert labelled.exit_code == 0, labelled.output
    lines = out.read_text().splitlines()
    assert lines[0] == "guid,tag" and [line.split(",")[0] for line in lines[1:]] == ["31", "32", "33", "34", "35"]
    assert all(line.split(",")[1] in ("negative", "neutral", "positive") for line in lines[1:])
    assert "wrote 5 predictions of lab5-concat (seed 1111)" in labelled.output

    (folder / "data" / "33.jpg").write_bytes(b"broken")
    failed = runner.invoke(cli, ["predict", "--run", str(result_file), "--data-root", str(folder), "--out", str(out)])
    assert failed.exit_code != 0 and "1 samples cannot be read" in failed.output and "33.jpg" in failed.output
    skipped = runner.invoke(
        cli,
        [
            "predict",
            "--run",
            str(result_file),
            "--data-root",
            str(folder),
            "--out",
            str(out),
            "--data-option",
            "skip_unreadable=true",
        ],
    )
    assert skipped.exit_code == 0 and "1 unreadable samples not predicted" in skipped.output
    assert out.read_text().splitlines()[3] == "33,null"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(
        elsewhere
    )  # the stage-1 checkpoints are found where the run found them, not from the working folder
    moved = runner.invoke(
        cli,
        [
            "predict",
            "--run",
            str(result_file),
            "--data-root",
            str(folder),
            "--out",
            str(out),
            "--data-option",
            "skip_unreadable=true",
        ],
    )
    assert moved.exit_code == 0, moved.output

    for guid in ("31", "32", "34", "35"):
        (folder / "data" / f"{guid}.jpg").write_bytes(b"broken")
    nothing = runner.invoke(
        cli,
        [
            "predict",
            "--run",
            str(result_file),
            "--data-root",
            str(folder),
            "--out",
            str(out),
            "--data-option",
            "skip_unreadable=true",
        ],
    )
    assert nothing.exit_code == 0, nothing.output  # as with MSABENCH_CACHE=off: an empty split, every line null
    assert "wrote 0 predictions" in nothing.output and out.read_text().splitlines()[1:] == [
        f"{guid},null" for guid in ("31", "32", "33", "34", "35")
    ]
    monkeypatch.chdir(tmp_path)

    checkpoint = torch.load(text_checkpoint, weights_only=True)
    checkpoint["model"] = {
        key: value + 0.01 if value.is_floating_point() else value for key, value in checkpoint["model"].items()
    }
    torch.save(checkpoint, text_checkpoint)  # stage 1's weights changed after stage 2 ran
    changed = runner.invoke(
        cli,
        [
            "predict",
            "--run",
            str(result_file),
            "--data-root",
            str(folder),
            "--out",
            str(out),
            "--data-option",
            "skip_unreadable=true",
        ],
    )
    assert changed.exit_code != 0 and "frozen text encoder (hf-text) rebuilt now has other weights" in changed.output

    text_checkpoint.rename(tmp_path / "moved.pt")
    gone = runner.invoke(
        cli,
        [
            "predict",
            "--run",
            str(result_file),
            "--data-root",
            str(folder),
            "--out",
            str(out),
            "--data-option",
            "skip_unreadable=true",
        ],
    )
    assert gone.exit_code != 0 and "--set" not in gone.output
    assert f"frozen text encoder (hf-text) starts from the checkpoint init_from='{stage1}'" in gone.output
    assert (
        "Run `msabench predict` from the folder the run was made in" in gone.output
        and "restore that checkpoint" in gone.output
    )


def test_stage_two_refuses_a_stage_one_run_on_other_splits(tmp_path, catalog):
    """A stage-1 encoder fitted on another split of the data has seen some of stage 2's test samples."""
    folder = write_lab5(tmp_path / "lab5", n=30, unlabelled=0)
    data = Lab5(folder).load()
    text_checkpoint = stage_one(catalog, data, "lab5-bert", "text")
    image_checkpoint = stage_one(catalog, data, "lab5-resnet50", "image")
    method = catalog.methods["lab5-concat"]

    def stage_two(dataset):
        hparams = method.hparams_for(dataset)
        for section, checkpoint in (("text", text_checkpoint), ("image", image_checkpoint)):
            hparams[section].update(TINY[section], init_from=str(checkpoint))
        return fit(method, dataset, catalog=catalog, seed=1111, protocol=PROTOCOL, hparams=hparams, device="cpu")

    reseeded = Lab5(folder, split_seed=7).load()
    assert set(reseeded.splits["test"].ids) & set(data.splits["train"].ids)  # the leak this guards against
    with pytest.raises(DataError) as error:
        stage_two(reseeded)
    message = str(error.value)
    assert "encoder 'hf-text' (text): checkpoint" in message and str(text_checkpoint.resolve()) in message
    assert "other train and valid samples than this run" in message and "seed 42" in message and "seed 7" in message
    assert (
        "Rerun the stage that wrote it with the same dataset, data root and --data-option values" in message
        and "--set text.init_from=PATH" in message
    )

    split_file = tmp_path / "split.json"
    split_file.write_text(
        json.dumps(
            {name: data.splits[name].ids for name in ("train", "test")} | {"valid": data.splits["valid"].ids[:-1]}
        )
    )
    with pytest.raises(DataError, match="other valid samples than this run"):
        stage_two(Lab5(folder, split_file=split_file).load())

    result = stage_two(data)  # the same splits: accepted
    assert (
        result.data["encoders"]["text"]["fingerprint"]["init_from"]["splits"]["ids_sha256"]["test"]
        == result.data["encoders"]["image"]["fingerprint"]["init_from"]["splits"]["ids_sha256"]["test"]
    )

    checkpoint = torch.load(text_checkpoint, weights_only=True)
    del checkpoint["splits"]  # as written before checkpoints recorded their splits
    torch.save(checkpoint, text_checkpoint)
    with pytest.raises(DataError, match="does not record which samples it was trained on"):
        stage_two(data)


def test_lab5_data_options_are_checked_before_loading():
    bad = CliRunner().invoke(cli, ["run", "-m", "lab5-bert", "-d", "lab5", "--data-option", "colour=red"])
    assert (
        bad.exit_code != 0
        and "lab5 has no option colour; it accepts: split_file, split_seed, skip_unreadable, train_fraction, "
        "train_fraction_seed"
        in bad.output
    )
