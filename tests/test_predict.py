"""`msabench.predict` (Lab5's plugin puts it on the command line), and the two-stage recipe it is most often used
with (on host fakes: a fine-tuned text and image run, then a head on both frozen encoders): stage-1 checkpoints
found through the {results}/{dataset}/{protocol}/{seed} template, predictions in the dataset's own format, checks of
frozen weights and of the splits a stage-1 encoder was trained on. Lab5's recipe is tested the same way in its
plugin."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import msabench
from fakes import TINY_FROZEN, TINY_IMAGE, FolderTweets, ImageTextPlugin, Plugin, write_tweets
from msabench import DataError, Protocol, Split, fit
from msabench.cli import cli
from msabench.errors import RunError
from msabench.inference import load_run, predict
from msabench.results import result_path
from msabench.testing import TinyImageText
from test_catalog import catalog_with

PROTOCOL = Protocol(max_epochs=2)  # both stages: stage 2 looks for stage 1 under its own protocol id
RESULTS = f"results/folder-tweets/tiny-text/{PROTOCOL.id}/seed-1111.pt"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def catalog(monkeypatch):
    """The host's fakes, also for the `msabench` command (which otherwise loads the installed plugins)."""
    found = catalog_with(Plugin(), ImageTextPlugin())
    monkeypatch.setattr("msabench.cli.options.load_catalog", lambda: found)
    return found


def stage_one(catalog, data, name):
    """A stage-1 run saved where the stage-2 method looks for it by default."""
    method = catalog.methods[name]
    path = result_path("results", data.name, name, 1111, protocol=PROTOCOL.id)
    fit(
        method, data, catalog=catalog, seed=1111, protocol=PROTOCOL, device="cpu", checkpoint=path.with_suffix(".pt")
    ).save(path)
    return path.with_suffix(".pt")


def test_two_stages_then_predict(tmp_path, catalog, monkeypatch):
    folder = write_tweets(tmp_path / "tweets", n=30, unlabelled=5)
    data = FolderTweets(folder).load()
    runner = CliRunner()
    stage2 = ["run", "-m", "tiny-frozen", "-d", "folder-tweets", "--data-root", str(folder), "--seeds", "1111"]
    stage2 += ["--max-epochs", str(PROTOCOL.max_epochs), "--no-progress", "-q"]
    missing = runner.invoke(cli, stage2)
    assert missing.exit_code != 0 and f"{RESULTS} does not exist" in missing.output
    assert "run that method first" in missing.output

    text_checkpoint = stage_one(catalog, data, "tiny-text")
    stage_one(catalog, data, "tiny-image")
    done = runner.invoke(cli, stage2)
    assert done.exit_code == 0, done.output
    (result_file,) = (tmp_path / "results" / "folder-tweets").glob("tiny-frozen*/*/seed-1111.json")
    assert result_file.parent.name == PROTOCOL.id
    result = json.loads(result_file.read_text())
    started = result["data"]["encoders"]["text"]["fingerprint"]["init_from"]
    assert (
        started["path"] == str((tmp_path / RESULTS).resolve())
        and started["method"] == "tiny-text"
        and len(started["sha256"]) == 64
    )
    assert started["splits"]["split"] == {
        "kind": "stratified",
        "seed": 42,
        "fractions": [0.8, 0.1, 0.1],
        "held_out": "floor",
    } and set(started["splits"]["ids_sha256"]) == {"train", "valid", "test"}
    assert result["hparams"]["image"]["init_from"] == f"results/folder-tweets/tiny-image/{PROTOCOL.id}/seed-1111.pt"

    out = tmp_path / "predictions.txt"

    def label(**options):
        return msabench.predict(result_file, out, data_root=folder, data_options=options, catalog=catalog)

    labelled = label()
    lines = out.read_text().splitlines()
    assert lines[0] == "id,label" and [line.split(",")[0] for line in lines[1:]] == ["31", "32", "33", "34", "35"]
    assert all(line.split(",")[1] in ("negative", "neutral", "positive") for line in lines[1:])
    assert (len(labelled.ids), labelled.method, labelled.seed, labelled.skipped) == (5, "tiny-frozen", 1111, 0)

    (folder / "data" / "33.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"(?s)1 samples cannot be read.*33\.jpg"):
        label()
    assert label(skip_unreadable="true").skipped == 1
    assert out.read_text().splitlines()[3] == "33,null"
    with pytest.raises(RunError, match="is a run's result or resume state: msabench does not overwrite it"):
        msabench.predict(result_file, result_file, data_root=folder, catalog=catalog)
    with pytest.raises(RunError, match="is a torch checkpoint: msabench does not overwrite it"):
        msabench.predict(result_file, tmp_path / RESULTS, data_root=folder, catalog=catalog)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the stage-1 checkpoints are found where the run found them, not from here
    assert len(label(skip_unreadable="true").ids) == 4

    for guid in ("31", "32", "34", "35"):
        (folder / "data" / f"{guid}.jpg").write_bytes(b"broken")
    nothing = label(skip_unreadable="true")  # as with MSABENCH_CACHE=off: an empty split, every line null
    assert nothing.ids == [] and out.read_text().splitlines()[1:] == [
        f"{guid},null" for guid in ("31", "32", "33", "34", "35")
    ]
    monkeypatch.chdir(tmp_path)

    checkpoint = torch.load(text_checkpoint, weights_only=True)
    checkpoint["model"] = {
        key: value + 0.01 if value.is_floating_point() else value for key, value in checkpoint["model"].items()
    }
    torch.save(checkpoint, text_checkpoint)  # stage 1's weights changed after stage 2 ran
    with pytest.raises(DataError, match=r"frozen text encoder \(hf-text\) rebuilt now has other weights"):
        label(skip_unreadable="true")

    text_checkpoint.rename(tmp_path / "moved.pt")
    with pytest.raises(DataError) as gone:
        label(skip_unreadable="true")
    assert "--set" not in str(gone.value)
    assert f"frozen text encoder (hf-text) starts from the checkpoint init_from='{RESULTS}'" in str(gone.value)
    assert "Run `msabench predict` from the folder the run was made in" in str(gone.value)
    assert "restore that checkpoint" in str(gone.value)


def test_stage_two_refuses_a_stage_one_run_on_other_splits(tmp_path, catalog):
    """A stage-1 encoder fitted on another split of the data has seen some of stage 2's test samples."""
    folder = write_tweets(tmp_path / "tweets", n=30)
    data = FolderTweets(folder).load()
    text_checkpoint = stage_one(catalog, data, "tiny-text")
    stage_one(catalog, data, "tiny-image")

    def stage_two(dataset):
        return fit(TINY_FROZEN, dataset, catalog=catalog, seed=1111, protocol=PROTOCOL, device="cpu")

    reseeded = FolderTweets(folder, split_seed=7).load()
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
        stage_two(FolderTweets(folder, split_file=split_file).load())

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
    from msabench.train import predict_batches

    class Probe(torch.nn.Module):
        def forward(self, batch):
            assert not self.training and not torch.is_grad_enabled()
            return {"prediction": batch["x"] * 2}

    split = Split("predict", ["a", "b", "c", "d", "e"], {"x": torch.arange(5.0)})
    seen = list(predict_batches(Probe().train(), split, 2, torch.device("cpu")))
    assert [batch["index"].tolist() for batch, _ in seen] == [[0, 1], [2, 3], [4]]
    assert torch.cat([outputs["prediction"] for _, outputs in seen]).tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


class PredictTheTestSplit(TinyImageText):
    """Tiny tweets whose inputs to predict are the test split's, without labels."""

    def unlabelled(self):
        test = self.load().splits["test"]
        return Split("predict", test.ids, {k: v for k, v in test.tensors.items() if k != "label"}, test.raw)


def test_predict_repeats_the_runs_own_batched_evaluation(tmp_path, catalog):
    """Predicting the test split's samples in its order, with the run's evaluation batch size and a trained
    (not frozen) encoder rebuilt from the checkpoint, gives exactly the run's test predictions."""
    dataset = PredictTheTestSplit()
    data = dataset.load()
    hparams = TINY_IMAGE.hparams_for(data)  # a ResNet: BatchNorm must be in eval mode to predict as the run did
    hparams["train"].update(eval_batch_size=3)
    path = result_path("results", data.name, TINY_IMAGE.name, 1111, protocol=PROTOCOL.id)
    result = fit(
        TINY_IMAGE,
        data,
        catalog=catalog,
        seed=1111,
        protocol=PROTOCOL,
        hparams=hparams,
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    )
    result.save(path)
    checkpoint, loaded = load_run(path)
    predictions = predict(checkpoint, loaded, dataset, catalog, device="cpu")
    assert predictions.batch_size == 3 and predictions.ids == result.predictions["ids"] == data.splits["test"].ids
    assert predictions.labels == [data.task.classes[int(i)] for i in result.predictions["predictions"]]
    assert len(set(predictions.labels)) == 3  # not one class for every sample, which any weights might give


def test_predict_needs_a_checkpoint_and_an_unlabelled_split(tmp_path, catalog):
    (tmp_path / "seed-1.json").write_text("{}")
    with pytest.raises(DataError, match="no checkpoint .*seed-1.pt beside .*--no-checkpoints"):
        load_run(tmp_path / "seed-1.json")
    runner = CliRunner()
    bad = runner.invoke(cli, ["run", "-m", "tiny-text", "-d", "mvsa-single", "--data-option", "colour=red"])
    assert (
        bad.exit_code != 0
        and "mvsa-single has no option colour; it accepts: split_file, split_seed, skip_unreadable" in bad.output
    )
