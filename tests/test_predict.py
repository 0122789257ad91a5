"""`msabench predict`, and the Lab5 two-stage recipe that it is most often used with: stage-1 checkpoints found
through the {dataset}/{seed} template, predictions in test_without_label.txt's format, checks of frozen weights."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from msabench import Catalog, DataError, Protocol, fit, get_plugin_manager
from msabench.cli import cli
from msabench.core.clip import TINY_CONFIG as CLIP_TINY
from msabench.core.imagetext import Lab5
from msabench.core.language import TINY_CONFIG as BERT_TINY
from msabench.core.vision import TINY_CONFIG as RESNET_TINY
from msabench.inference import load_run, predict
from msabench.results import result_path
from msabench.testing import write_lab5

TINY = {"text": {"config": BERT_TINY, "max_length": 32}, "image": {"config": RESNET_TINY, "image_size": 16}}
SETS = [
    arg
    for section, values in TINY.items()
    for key, value in values.items()
    for arg in ("--set", f"{section}.{key}={json.dumps(value)}")
]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


def stage_one(catalog, data, name, section):
    """A stage-1 run saved where the stage-2 methods look for it by default."""
    method = catalog.methods[name]
    hparams = method.hparams_for(data)
    hparams[section].update(TINY[section])
    path = result_path("results", data.name, name, 1111)
    fit(
        method,
        data,
        catalog=catalog,
        seed=1111,
        protocol=Protocol(max_epochs=1),
        hparams=hparams,
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    ).save(path)
    return path.with_suffix(".pt")


def test_lab5_two_stages_then_predict(tmp_path, catalog, monkeypatch):
    folder = write_lab5(tmp_path / "lab5", n=30, unlabelled=5)
    data = Lab5(folder).load()
    runner = CliRunner()
    stage2 = [
        "run",
        "-m",
        "lab5-concat",
        "-d",
        "lab5",
        "--data-root",
        str(folder),
        "--seeds",
        "1111",
        "--max-epochs",
        "2",
        *SETS,
        "--no-progress",
        "-q",
    ]
    missing = runner.invoke(cli, stage2)
    assert (
        missing.exit_code != 0
        and "results/lab5/lab5-bert/seed-1111.pt does not exist" in missing.output
        and "run that method first" in missing.output
    )

    text_checkpoint = stage_one(catalog, data, "lab5-bert", "text")
    stage_one(catalog, data, "lab5-resnet50", "image")
    done = runner.invoke(cli, stage2)
    assert done.exit_code == 0, done.output
    (result_file,) = (tmp_path / "results" / "lab5").glob("lab5-concat*/seed-1111.json")
    result = json.loads(result_file.read_text())
    started = result["data"]["encoders"]["text"]["fingerprint"]["init_from"]
    assert (
        started["path"] == str((tmp_path / "results/lab5/lab5-bert/seed-1111.pt").resolve())
        and started["method"] == "lab5-bert"
        and len(started["sha256"]) == 64
    )
    assert started["splits"]["split"] == {"kind": "stratified", "seed": 42, "fractions": [0.8, 0.1, 0.1]} and set(
        started["splits"]["ids_sha256"]
    ) == {"train", "valid", "test"}
    assert result["hparams"]["image"]["init_from"] == "results/lab5/lab5-resnet50/seed-1111.pt"

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
    assert skipped.exit_code == 0 and "1 unreadable samples written as null" in skipped.output
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
    assert (
        "frozen text encoder (hf-text) starts from the checkpoint init_from='results/lab5/lab5-bert/seed-1111.pt'"
        in gone.output
    )
    assert (
        "Run `msabench predict` from the folder the run was made in" in gone.output
        and "restore that checkpoint" in gone.output
    )


def test_stage_two_refuses_a_stage_one_run_on_other_splits(tmp_path, catalog):
    """A stage-1 encoder fitted on another split of the data has seen some of stage 2's test samples."""
    folder = write_lab5(tmp_path / "lab5", n=30, unlabelled=0)
    data = Lab5(folder).load()
    text_checkpoint = stage_one(catalog, data, "lab5-bert", "text")
    stage_one(catalog, data, "lab5-resnet50", "image")
    method = catalog.methods["lab5-concat"]

    def stage_two(dataset):
        hparams = method.hparams_for(dataset)
        for section in ("text", "image"):
            hparams[section].update(TINY[section])
        return fit(
            method, dataset, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=1), hparams=hparams, device="cpu"
        )

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


def test_predict_batches_keeps_the_split_order_in_eval_mode():
    from msabench import Split
    from msabench.train import predict_batches

    class Probe(torch.nn.Module):
        def forward(self, batch):
            assert not self.training and not torch.is_grad_enabled()
            return {"prediction": batch["x"] * 2}

    split = Split("predict", ["a", "b", "c", "d", "e"], {"x": torch.arange(5.0)})
    seen = list(predict_batches(Probe().train(), split, 2, torch.device("cpu")))
    assert [batch["index"].tolist() for batch, _ in seen] == [[0, 1], [2, 3], [4]]
    assert torch.cat([outputs["prediction"] for _, outputs in seen]).tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_predict_repeats_the_runs_own_batched_evaluation(tmp_path, catalog):
    """DECA/IDCA predictions depend on the batch; predicting the test split's samples in its order with the
    run's evaluation batch size gives exactly the run's test predictions."""
    folder = write_lab5(tmp_path / "lab5", n=40, unlabelled=0)
    data = Lab5(folder).load()
    method = catalog.methods["deca-idca"]
    hparams = method.hparams_for(data)
    hparams["text"]["config"] = hparams["image"]["config"] = CLIP_TINY
    hparams["fusion"].update(low_dim=4, high_dim=12, hidden=8)
    hparams["train"].update(eval_batch_size=3, lr=1e-2)
    path = result_path("results", "lab5", "deca-idca", 1111)
    result = fit(
        method,
        data,
        catalog=catalog,
        seed=1111,
        protocol=Protocol(max_epochs=2),
        hparams=hparams,
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    )
    result.save(path)
    (folder / "test_without_label.txt").write_text(
        "guid,tag\n" + "".join(f"{guid},null\n" for guid in data.splits["test"].ids)
    )
    checkpoint, loaded = load_run(path)
    predictions = predict(checkpoint, loaded, Lab5(folder), catalog, device="cpu")
    assert predictions.batch_size == 3 and predictions.ids == result.predictions["ids"]
    assert predictions.labels == [data.task.classes[int(i)] for i in result.predictions["predictions"]]


def test_predict_needs_a_checkpoint_and_an_unlabelled_split(tmp_path, catalog):
    (tmp_path / "seed-1.json").write_text("{}")
    with pytest.raises(DataError, match="no checkpoint .*seed-1.pt beside .*--no-checkpoints"):
        load_run(tmp_path / "seed-1.json")
    runner = CliRunner()
    bad = runner.invoke(cli, ["run", "-m", "lab5-bert", "-d", "lab5", "--data-option", "colour=red"])
    assert (
        bad.exit_code != 0
        and "lab5 has no option colour; it accepts: split_file, split_seed, skip_unreadable" in bad.output
    )
