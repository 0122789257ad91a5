"""Robustness: the corruptions applied to a split (only the inputs asked for, MultiBench's joint time-series noise),
the summary numbers on known curves and their normalisation on the leaderboard, the thread count and the clean
metrics, and whole runs of host fakes measured end to end (regression on features and on token ids, classification
on frozen encoders, and a frozen-encoder run from the command line whose clean feature-cache entries must survive).
The corruption functions themselves are pinned in test_corruptions.py."""

import io
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fakes import ConcatFusion, ImageTextPlugin, Plugin, TokenIdPlugin, write_tweets
from msabench import DataError, Protocol, Split, fit
from msabench.cli import cli
from msabench.corruptions import generator, multibench_timeseries
from msabench.inference import load_run, rebuild
from msabench.leaderboard import maxmin_normalise, render_dataset
from msabench.results import RunResult, result_files, result_path
from msabench.robustness import (
    ALL_LEVELS,
    LEVELS,
    Target,
    clean_note,
    corrupt,
    describe,
    effective_robustness,
    measure,
    read,
    relative_robustness,
    remove,
    report_path,
    unk_id,
    write,
)
from msabench.testing import TinyImageText, TinyMSA, tiny_data, tiny_hparams
from test_catalog import catalog_with
from test_stats import seeds

PROTOCOL = Protocol(max_epochs=1)


def token_ids():
    ids = torch.tensor([[1, 7, 8, 9, 2, 0, 0], [1, 5, 2, 0, 0, 0, 0]])
    mask = (ids > 0).long()
    return torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)


def frames():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) + 1
    lengths = torch.tensor([5, 2])
    x[1, 2:] = 7.0
    return x, lengths


def png(width=12, height=8, value=200):
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8), "RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# -- splits -----------------------------------------------------------------------------------------------


def split():
    x, lengths = frames()
    return Split(
        "test",
        ["a", "b"],
        {"text_bert": token_ids(), "text_lengths": torch.tensor([5, 3]), "audio": x, "audio_lengths": lengths},
        {"raw_text": ["a wonderful movie", "terrible acting"], "image": [png(), png(6, 6)]},
    )


TARGETS = {
    "text": Target("text", "text_bert", "token-ids", "text_lengths"),
    "audio": Target("audio", "audio", "frames", "audio_lengths"),
    "words": Target("text", "raw_text", "words"),
    "image": Target("image", "image", "images"),
}


@pytest.mark.parametrize("corruptions", ["multibench", "msabench"])
@pytest.mark.parametrize("name", list(TARGETS))
def test_only_the_inputs_asked_for_change(name, corruptions):
    original = split()
    out = corrupt(original, [TARGETS[name]], 1.0, generator(corruptions, 0, name, 9), 3, corruptions)
    key = TARGETS[name].key
    if key in original.raw:
        assert out.raw[key] != original.raw[key]
    else:
        assert not torch.equal(out.tensors[key], original.tensors[key])
    for other, value in original.tensors.items():
        if other != key:
            assert out.tensors[other] is value  # lengths included: a dropped modality keeps its length
    for other, value in original.raw.items():
        if other != key:
            assert out.raw[other] == value
    assert out.ids == original.ids and len(out) == 2


def test_multibench_corrupts_feature_sequences_together_in_its_order():
    """The all-modalities curve: one add_timeseries_noise call over [vision, audio, text], as MultiBench's affect
    loaders make it, whatever the order of the run's modalities."""
    features = {m: torch.randn(30, 4, 2, generator=torch.Generator().manual_seed(i)) for i, m in enumerate("tav")}
    names = {"t": "text", "a": "audio", "v": "vision"}
    chosen = [Target(names[m], names[m], "frames", None) for m in "tav"]
    test = Split("test", [str(i) for i in range(30)], {names[m]: x for m, x in features.items()}, {})
    out = corrupt(test, chosen, 0.3, generator("multibench", 5, "all", 9), None, "multibench")
    expected = multibench_timeseries([features[m] for m in "vat"], 0.3, generator("multibench", 5, "all", 9))
    for m, x in zip("vat", expected, strict=True):
        assert torch.equal(out.tensors[names[m]], x)
    with pytest.raises(ValueError, match="unknown corruption set"):
        corrupt(test, chosen, 0.3, generator("multibench", 5, "all", 9), None, "multi-bench")


def test_each_input_says_whose_definition_it_is():
    assert describe(TARGETS["audio"], "multibench")["definition"] == "multibench"
    assert describe(TARGETS["words"], "multibench")["definition"] == "multibench"
    assert describe(TARGETS["image"], "multibench")["definition"] == "multibench"
    assert describe(TARGETS["text"], "multibench")["definition"] == "proxy"  # token ids: [UNK]
    text_features = describe(Target("text", "text", "frames", "text_lengths"), "multibench")
    assert (
        text_features["definition"] == "proxy" and "its text curve misspells raw words" in text_features["corruption"]
    )
    assert {describe(t, "msabench")["definition"] for t in TARGETS.values()} == {"msabench", "proxy"}
    assert "MultiBench" not in " ".join(describe(t, "msabench")["corruption"] for t in TARGETS.values())


def test_missing_inputs_look_absent():
    out = remove(split(), list(TARGETS.values()))
    assert out.tensors["text_bert"][:, 0].tolist() == [[1, 2, 0, 0, 0, 0, 0], [1, 2, 0, 0, 0, 0, 0]]
    assert out.tensors["text_bert"][:, 1, :3].tolist() == [[1, 1, 0], [1, 1, 0]]
    assert out.tensors["text_lengths"].tolist() == [2, 2]
    assert not out.tensors["audio"].any() and out.tensors["audio_lengths"].tolist() == [1, 1]
    assert out.raw["raw_text"] == ["", ""]
    assert [pixels(b).shape for b in out.raw["image"]] == [(8, 12, 3), (6, 6, 3)]
    assert not any(pixels(b).any() for b in out.raw["image"])


# -- summary numbers --------------------------------------------------------------------------------------


def test_relative_robustness_is_the_trapezoid_area():
    assert relative_robustness([1.0] * 10) == pytest.approx(0.9)
    falling = [1.0 - 0.1 * i for i in range(10)]  # 1.0 ... 0.1: area (1.0 + 0.1) / 2 * 0.9
    assert relative_robustness(falling) == pytest.approx(0.495)
    assert relative_robustness([0.8, 0.6, 0.7]) == pytest.approx(0.1 * (0.7 + 0.65))


def test_effective_robustness_against_the_reference():
    reference = [0.8, 0.7, 0.6]
    assert effective_robustness([0.9, 0.8, 0.7], reference) == pytest.approx(0.0, abs=1e-12)  # the same, shifted up
    assert effective_robustness([0.9, 0.85, 0.8], reference) == pytest.approx(0.05 + 0.1)
    assert np.copysign(1, effective_robustness(reference, reference)) == 1.0  # no -0.0
    with pytest.raises(ValueError, match="cannot be compared"):
        effective_robustness([0.9], reference)


# -- whole runs -----------------------------------------------------------------------------------------------


@pytest.fixture()
def catalog(monkeypatch):
    """The host's fakes, also for the `msabench` command (which otherwise loads the installed plugins)."""
    found = catalog_with(Plugin(), TokenIdPlugin(), ImageTextPlugin())
    monkeypatch.setattr("msabench.cli.options.load_catalog", lambda: found)
    return found


def trained(catalog, method_name, dataset, tmp_path, seed=1111):
    method = catalog.methods[method_name]
    path = result_path(tmp_path / "results", dataset.name, method.name, seed, protocol=PROTOCOL.id)
    result = fit(
        method,
        tiny_data(dataset),
        catalog=catalog,
        seed=seed,
        protocol=PROTOCOL,
        hparams=tiny_hparams(catalog, method, dataset),
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    )
    result.save(path)
    return path


def test_regression_run_end_to_end(catalog, tmp_path):
    path = trained(catalog, "tiny", TinyMSA, tmp_path)
    loaded = (TinyMSA(tmp_path), tiny_data(TinyMSA))
    report = measure(path, catalog, loaded=loaded, reference=path)
    assert report["clean_matches_result"] is True  # the clean evaluation reproduces the run's test metrics
    assert report["clean_note"] is None and report["threads"]["source"] == "result"
    assert report["metric"] == "Acc-2_non0" and report["secondary"] == "MAE"
    assert report["corruptions"] == "multibench"
    assert {m: i["definition"] for m, i in report["inputs"].items()} == {
        "text": "proxy",  # text features: MultiBench misspells words for its text curve
        "audio": "multibench",
        "vision": "multibench",
    }
    assert list(report["curves"]) == ["text", "audio", "vision", "all"]
    assert report["curves"]["audio"]["levels"] == list(LEVELS) and report["curves"]["all"]["levels"] == list(ALL_LEVELS)
    assert {m: i["kind"] for m, i in report["inputs"].items()} == {
        "text": "frames",
        "audio": "frames",
        "vision": "frames",
    }
    for curve in report["curves"].values():
        assert curve["metrics"][0] == report["clean"] and len(curve["metrics"]) == 10
        assert all("MAE" in point for point in curve["metrics"])
    assert list(report["missing"]) == ["text", "audio", "vision", "text+audio", "text+vision", "audio+vision"]
    text = [m["Acc-2_non0"] for m in report["curves"]["text"]["metrics"]]
    assert report["summary"]["relative"]["text"] == relative_robustness(text)
    assert report["summary"]["effective"] == {"text": 0.0, "audio": 0.0, "vision": 0.0, "all": 0.0}  # itself
    # the reference (the same run, measured again inside) gives the same curves: seeded and deterministic
    assert report["reference"]["curves"] == report["curves"] and report["reference"]["clean"] == report["clean"]
    assert report["reference"]["fusion"] == "fake-concat" and report["reference"]["late_fusion"] is True
    assert report["summary"]["scale"].startswith("raw")
    written = write(report, report_path(path))
    assert written.name == "seed-1111.robustness.json" and read(written)["curves"] == json.loads(
        json.dumps(report["curves"])
    )


def test_msabench_set_and_a_reference_that_is_not_late_fusion(catalog, tmp_path, monkeypatch, caplog):
    path = trained(catalog, "tiny", TinyMSA, tmp_path)
    loaded = (TinyMSA(tmp_path), tiny_data(TinyMSA))
    monkeypatch.setattr(ConcatFusion, "late", False)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        report = measure(path, catalog, loaded=loaded, reference=path, corruptions="msabench")
    assert report["corruptions"] == "msabench" and report["clean_matches_result"] is True
    assert {i["definition"] for i in report["inputs"].values()} == {"msabench"}
    assert report["reference"]["late_fusion"] is False and "not late fusion" in caplog.text
    multibench = measure(path, catalog, loaded=loaded)
    assert multibench["clean"] == report["clean"] and multibench["curves"]["audio"] != report["curves"]["audio"]
    assert report_path(path, "msabench").name == "seed-1111.robustness-msabench.json"
    with pytest.raises(ValueError, match="unknown corruption set"):
        measure(path, catalog, loaded=loaded, corruptions="MultiBench")


def test_reference_must_exist_and_match(catalog, tmp_path):
    path = trained(catalog, "tiny", TinyMSA, tmp_path)
    other_seed = trained(catalog, "tiny", TinyMSA, tmp_path, seed=1112)
    loaded = (TinyMSA(tmp_path), tiny_data(TinyMSA))
    with pytest.raises(DataError, match="no reference run .*nowhere.json"):
        measure(path, catalog, loaded=loaded, reference=tmp_path / "nowhere.json")
    with pytest.raises(DataError, match="same dataset and seed"):
        measure(path, catalog, loaded=loaded, reference=other_seed)


def test_classification_run_end_to_end(catalog, tmp_path):
    path = trained(catalog, "tiny-clip", TinyImageText, tmp_path)
    loaded = (TinyImageText(tmp_path), tiny_data(TinyImageText))
    report = measure(path, catalog, loaded=loaded)
    assert report["clean_matches_result"] is True and report["metric"] == "Acc" and report["secondary"] is None
    assert {m: i["kind"] for m, i in report["inputs"].items()} == {"text": "words", "image": "images"}
    assert list(report["curves"]) == ["text", "image", "all"] and list(report["missing"]) == ["text", "image"]
    assert report["summary"]["effective"] is None and report["reference"] is None
    # the corrupted raw inputs went through the frozen encoders' preprocessing again: features change, only there
    checkpoint, result = load_run(path)
    test = loaded[1].splits["test"]
    features = {}
    for name, chosen in (("clean", []), ("text", [Target("text", "raw_text", "words")])):
        corrupted = corrupt(test, chosen, 1.0, generator("multibench", 0, "text", 9), None)
        data = replace(loaded[1], splits={"test": corrupted})
        features[name] = rebuild(checkpoint, result, data, catalog, device="cpu").data.splits["test"].tensors
    assert not torch.equal(features["clean"]["text@clip-text"], features["text"]["text@clip-text"])
    assert torch.equal(features["clean"]["image@clip-image"], features["text"]["image@clip-image"])


@pytest.fixture()
def threads():
    """Restores torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cli_on_a_frozen_encoder_run_keeps_clean_cache_entries(catalog, tmp_path, monkeypatch, threads):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    folder = write_tweets(tmp_path / "tweets", n=30, unlabelled=2)
    runner = CliRunner()
    trained = runner.invoke(
        cli,
        ["run", "-m", "tiny-clip", "-d", "folder-tweets", "--data-root", str(folder), "--seeds", "1111"]
        + ["--max-epochs", "1", "--no-progress", "-q"],
    )
    assert trained.exit_code == 0, trained.output
    (path,) = result_files(tmp_path / "results")
    clean = {p: p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert any("/test/" in str(p) for p in clean)  # the run cached its frozen test features

    assert RunResult.load(path).hardware["torch_threads"] == 1  # `msabench run` trains on one thread

    torch.set_num_threads(2)  # a process on two threads (the `threads` fixture restores the count)
    outcome = runner.invoke(cli, ["robustness", "--run", str(path), "--data-root", str(folder), "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    assert "| text " in outcome.stdout and "| image " in outcome.stdout and "clean " in outcome.stdout
    assert "corruptions: multibench" in outcome.stdout and "threads: 1 (result)" in outcome.stdout
    report = read(report_path(path))
    assert report["threads"] == {"used": 1, "source": "result", "result": 1} and torch.get_num_threads() == 2
    assert report["clean_matches_result"] is True and report["test_samples"] == 2  # floor(n_c / 10) per class
    assert report["clean_note"] is None and report["corruptions"] == "multibench"
    assert report_path(path).with_suffix(".png").is_file()
    for file, data in clean.items():
        assert file.read_bytes() == data  # clean entries are never overwritten
    keys = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("key.json")]
    corrupted = [key for key in keys if "corruption" in key]
    assert len(keys) == len(corrupted) + 6  # the run's entries: train, valid and test of two frozen encoders
    assert {key["input"] for key in corrupted} == {"raw_text", "image"}
    # a corrupted-text condition caches only text features; its image features are the clean entry's
    assert all(key["input"] in key["corruption"]["inputs"] for key in corrupted)

    missing = runner.invoke(cli, ["robustness", "--run", str(path), "--reference", str(tmp_path / "no.json")])
    assert missing.exit_code == 1 and "Error: no reference run" in missing.output

    other = runner.invoke(
        cli,
        ["robustness", "--run", str(path), "--data-root", str(folder), "--corruptions", "msabench", "--threads", "2"]
        + ["--no-plot"],
    )
    assert other.exit_code == 0, other.output
    theirs = read(report_path(path, "msabench"))  # beside the multibench report, which stays
    assert theirs["corruptions"] == "msabench" and theirs["threads"] == {"used": 2, "source": "given", "result": 1}
    assert read(report_path(path))["corruptions"] == "multibench"

    board = runner.invoke(cli, ["leaderboard", "--results", "results", "--out", "boards", "--robustness"])
    assert board.exit_code == 0, board.output
    page = Path("boards/folder-tweets.md").read_text()
    assert "### Robustness: multibench corruptions" in page and "RR text" in page and "RR all" in page


def test_token_id_run_uses_the_vocabulary_unk(catalog, tmp_path):
    path = trained(catalog, "tiny-bert", TinyMSA, tmp_path)  # bert-text reads text_bert token ids
    dataset = TinyMSA(tmp_path)
    assert unk_id(dataset, tiny_data(TinyMSA)) == dataset.vocabulary.index("[UNK]") == 3
    report = measure(path, catalog, loaded=(dataset, tiny_data(TinyMSA)))
    assert report["inputs"]["text"]["kind"] == "token-ids" and report["clean_matches_result"] is True
    assert report["inputs"]["audio"]["kind"] == "frames"


def test_unk_of_a_bert_tokenizer_and_without_one():
    data = tiny_data(TinyMSA)
    assert unk_id(object(), replace(data, tokenizer="bert-base-chinese")) == 100
    assert unk_id(object(), replace(data, tokenizer="no-such-tokenizer")) is None  # offline, nowhere on disk
    with pytest.raises(DataError, match=r"\[UNK\] id"):
        corrupt(split(), [TARGETS["text"]], 0.5, generator("multibench", 0, "text", 5), unk=None)


def test_clean_note_says_why_the_clean_metrics_differ():
    result = RunResult(
        dataset="d",
        method="m",
        seed=1,
        metrics={"Acc": 0.5, "F1": 0.4},
        protocol={},
        task={},
        versions={"torch": torch.__version__},
        hardware={"torch_threads": 1, "device": "cpu"},
    )
    same = {"clean": {"Acc": 0.5, "F1": 0.4}, "clean_matches_result": True}
    assert clean_note(same, result, 1, torch.device("cpu")) is None
    assert clean_note({**same, "clean_matches_result": None}, None, 2, torch.device("cpu")) is None
    other = {"clean": {"Acc": 0.5, "F1": 0.4000000001}, "clean_matches_result": False}
    note = clean_note(other, result, 2, torch.device("cpu"))
    assert "F1 0.4000000001 vs 0.4" in note and "Acc" not in note
    assert "2 torch threads here, 1 in the run" in note
    note = clean_note(other, result, 1, torch.device("cpu"))
    assert "same threads, device, torch and machine: the data or the checkpoint differ" in note
    moved = replace(result, hardware={"torch_threads": 1, "device": "cuda:0"}, versions={"torch": "0.1"})
    note = clean_note(other, moved, 1, torch.device("cpu"))
    assert "evaluated on cpu, trained on cuda" in note and "0.1 in the run" in note


def fake_report(row, seed, relative, effective=None, corruptions="multibench"):
    return {
        "dataset": "ch-sims",
        "protocol": "mmsa-1",
        "row": row,
        "seed": seed,
        "metric": "Acc-2",
        "corruptions": corruptions,
        "clean": {"Acc-2": 0.8 + 0.01 * seed},
        "curves": {"text": {}, "audio": {}, "all": {}},
        "summary": {"relative": relative, "effective": effective},
        "reference": {"row": "lf-dnn", "fusion": "late-concat", "late_fusion": True} if effective else None,
    }


def cells(table, row):
    line = next(line for line in table.splitlines() if line.startswith(f"| {row} "))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_leaderboard_robustness_table():
    results = seeds("best", [0.8, 0.81]) + seeds("far", [0.7, 0.71]) + seeds("mid", [0.75])
    reports = [
        fake_report("best", 0, {"text": 0.6, "audio": 0.7, "all": 0.5}, {"text": 0.01, "audio": None, "all": 0.03}),
        fake_report("best", 1, {"text": 0.62, "audio": 0.7, "all": 0.5}, {"text": 0.03, "audio": None, "all": 0.05}),
        fake_report("far", 0, {"text": 0.4, "audio": 0.3, "all": 0.2}),
        fake_report("mid", 0, {"text": 0.5, "audio": 0.3, "all": 0.8}, {"text": -0.01, "audio": None, "all": 0.0}),
        fake_report("far", 0, {"text": 0.1, "audio": 0.1, "all": 0.1}, corruptions="msabench"),
    ]
    page = render_dataset("ch-sims", results, robustness=reports)
    table = page.split("### Robustness: multibench corruptions")[1].split("### Robustness: msabench")[0]
    header = next(line for line in table.splitlines() if line.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Method",
        "Seeds",
        "Clean Acc-2",
        "RR text",
        "RR audio",
        "RR all",
        "ER text",
        "ER all",
    ]
    # each RR and ER: min-max normalised over the rows' seed means, then the raw mean ± std
    assert cells(table, "best") == [
        "best",
        "2",
        "80.50 ± 0.71",
        "1.00 (0.6100 ± 0.0141)",
        "1.00 (0.7000 ± 0.0000)",
        "0.50 (0.5000 ± 0.0000)",
        "1.00 (+0.0200 ± 0.0141)",
        "1.00 (+0.0400 ± 0.0141)",
    ]
    assert cells(table, "mid")[3:] == [
        "0.48 (0.5000)",
        "0.00 (0.3000)",
        "1.00 (0.8000)",
        "0.00 (-0.0100)",
        "0.00 (+0.0000)",
    ]
    assert cells(table, "far")[1] == "1" and cells(table, "far")[3:] == ["0.00 (0.4000)", "0.00 (0.3000)"] + [
        "0.00 (0.2000)",
        "—",
        "—",
    ]
    assert "ER is measured against lf-dnn (late fusion: `late-concat`)." in table
    alone = page.split("### Robustness: msabench corruptions")[1]
    assert cells(alone, "far")[3:] == ["— (0.1000)", "— (0.1000)", "— (0.1000)"]  # one row: nothing to normalise
    assert "### Robustness" not in render_dataset("ch-sims", results)


def test_maxmin_normalise_as_multibench():
    assert maxmin_normalise({"a": 0.2, "b": 0.6, "c": 0.5}) == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.75})
    found = maxmin_normalise({"a": 0.2, "b": float("nan"), "c": 0.4})
    assert found["a"] == 0.0 and found["c"] == 1.0 and np.isnan(found["b"])
    assert all(np.isnan(v) for v in maxmin_normalise({"a": 0.3, "b": 0.3}).values())  # max = min: undefined
