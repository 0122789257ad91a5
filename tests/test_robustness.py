"""Robustness: the corruption functions (levels 0 and 1 exactly, determinism, only the inputs asked for), the
summary numbers on known curves, and whole runs of host fakes measured end to end (regression on features and on
token ids, classification on frozen encoders, and a frozen-encoder run from the command line whose clean
feature-cache entries must survive)."""

import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fakes import ImageTextPlugin, Plugin, TokenIdPlugin, write_tweets
from msabench import DataError, Protocol, Split, fit
from msabench.cli import cli
from msabench.inference import load_run, rebuild
from msabench.leaderboard import render_dataset
from msabench.results import result_files, result_path
from msabench.robustness import (
    ALL_LEVELS,
    LEVELS,
    NEIGHBOURS,
    Target,
    corrupt,
    corrupt_frames,
    corrupt_image,
    corrupt_text,
    corrupt_token_ids,
    effective_robustness,
    generator,
    measure,
    misspell,
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


class Scripted:
    """A stand-in for numpy's Generator that returns the integers and permutations a test scripts."""

    def __init__(self, *integers, permutation=None):
        self.values, self.order = list(integers), permutation

    def integers(self, *args):
        return self.values.pop(0)

    def permutation(self, n):
        return np.asarray(self.order)


# -- text --------------------------------------------------------------------------------------------------


def test_each_misspelling():
    assert misspell("wonder", Scripted(0, 2)) == "wodner"  # swap letters 2 and 3
    assert misspell("wonder", Scripted(1, permutation=[3, 2, 1, 0])) == "wednor"  # inner letters reversed
    typo = misspell("wonder", Scripted(2, 0, 1))  # first letter, second neighbour of w
    assert typo == NEIGHBOURS["w"][1] + "onder"
    assert misspell("Wonder", Scripted(2, 0, 0)) == NEIGHBOURS["w"][0].upper() + "onder"  # case kept
    assert misspell("wonder", Scripted(3, 2)) == "wonnder"  # sticky n
    assert misspell("wonder", Scripted(4, 1)) == "wnder"  # o omitted
    assert misspell("word", Scripted(0, 1)) == "wrod"  # the only inner swap of a 4-letter word


def test_keyboard_neighbours():
    assert set(NEIGHBOURS["g"]) == set("fhtybv") and set(NEIGHBOURS["q"]) == set("wa")
    assert all(key in NEIGHBOURS[other] for key, near in NEIGHBOURS.items() for other in near)  # symmetric


TEXT = "The movie was wonderful, truly AMAZING acting! but a bit long at times..."


def test_text_levels_zero_and_one():
    assert corrupt_text(TEXT, 0.0, generator(1, "text", 0)) is TEXT
    out = corrupt_text(TEXT, 1.0, generator(1, "text", 9))
    before, after = TEXT.split(" "), out.split(" ")
    assert len(before) == len(after)
    for word, new in zip(before, after, strict=True):
        letters = word.strip(",.!")
        if len(letters) <= 3:
            assert new == word  # "The", "was", "but", "a", "bit", "at" untouched
        else:
            assert new != word and abs(len(new) - len(word)) <= 1  # one misspelling
            assert new[len(new.rstrip(",.!")) :] == word[len(word.rstrip(",.!")) :]  # punctuation kept aside
    assert corrupt_text(TEXT, 1.0, generator(1, "text", 9)) == out  # seeded
    assert corrupt_text(TEXT, 1.0, generator(2, "text", 9)) != out


def test_text_probability():
    words = " ".join(["sentiment"] * 4000)
    out = corrupt_text(words, 0.3, generator(0, "text", 3)).split()
    assert 0.27 < np.mean([w != "sentiment" for w in out]) < 0.33  # p = 0.3, 4000 words: one std is 0.007


# -- token ids, frames, images -------------------------------------------------------------------------------


def token_ids():
    ids = torch.tensor([[1, 7, 8, 9, 2, 0, 0], [1, 5, 2, 0, 0, 0, 0]])
    mask = (ids > 0).long()
    return torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)


def test_token_ids_levels():
    ids = token_ids()
    assert torch.equal(corrupt_token_ids(ids, 0.0, generator(0, "t", 0), unk=3), ids)
    out = corrupt_token_ids(ids, 1.0, generator(0, "t", 9), unk=3)
    assert out[0, 0].tolist() == [1, 3, 3, 3, 2, 0, 0] and out[1, 0].tolist() == [1, 3, 2, 0, 0, 0, 0]
    assert torch.equal(out[:, 1:], ids[:, 1:])  # mask and segments unchanged
    assert torch.equal(ids, token_ids())  # the input is not modified


def frames():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) + 1
    lengths = torch.tensor([5, 2])
    x[1, 2:] = 7.0  # padding that is not zero: the corruption must not touch it
    return x, lengths


def test_frames_levels_zero_and_one():
    x, lengths = frames()
    assert torch.equal(corrupt_frames(x, lengths, 0.0, generator(0, "a", 0)), x)
    out = corrupt_frames(x, lengths, 1.0, generator(0, "a", 9))
    assert torch.equal(out[0], torch.zeros(5, 3)) and torch.equal(out[1, :2], torch.zeros(2, 3))
    assert torch.equal(out[1, 2:], torch.full((3, 3), 7.0))  # padding untouched
    vectors = torch.ones(4, 6)  # [N, D] features: one step each
    assert torch.equal(corrupt_frames(vectors, None, 1.0, generator(0, "a", 9)), torch.zeros(4, 6))


def test_frames_noise_and_drop_statistics():
    x = torch.zeros(200, 50, 8)
    out = corrupt_frames(x, None, 0.4, generator(3, "audio", 4))
    dropped = (out == 0).all(-1)
    assert 0.37 < dropped.float().mean() < 0.43  # whole steps zeroed with probability 0.4
    assert float(out[~dropped].std()) == pytest.approx(0.4, rel=0.03)  # sigma = p
    assert torch.equal(out, corrupt_frames(x, None, 0.4, generator(3, "audio", 4)))
    assert not torch.equal(out, corrupt_frames(x, None, 0.4, generator(3, "audio", 5)))


def png(width=12, height=8, value=200):
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8), "RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_image_levels():
    data = png()
    assert corrupt_image(data, 0.0, generator(0, "image", 0)) is data
    black = pixels(corrupt_image(data, 1.0, generator(0, "image", 9)))
    assert black.shape == (8, 12, 3) and not black.any()
    half = pixels(corrupt_image(data, 0.5, generator(0, "image", 5)))
    assert (half.max(-1) == 0).sum() >= round(8 * math.sqrt(0.5)) * round(12 * math.sqrt(0.5))  # the occlusion
    visible = half[half.max(-1) > 0].astype(float)
    assert 50 < visible.std() < 160  # noise of sigma 0.5 (127 levels), clipped
    assert corrupt_image(data, 0.5, generator(0, "image", 5)) == corrupt_image(data, 0.5, generator(0, "image", 5))


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


@pytest.mark.parametrize("name", list(TARGETS))
def test_only_the_inputs_asked_for_change(name):
    original = split()
    out = corrupt(original, [TARGETS[name]], 1.0, generator(0, name, 9), unk=3)
    key = TARGETS[name].key
    if key in original.raw:
        assert out.raw[key] != original.raw[key]
    else:
        assert not torch.equal(out.tensors[key], original.tensors[key])
    for other, value in original.tensors.items():
        if other != key:
            assert out.tensors[other] is value
    for other, value in original.raw.items():
        if other != key:
            assert out.raw[other] == value
    assert out.ids == original.ids and len(out) == 2


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
    assert math.copysign(1, effective_robustness(reference, reference)) == 1.0  # no -0.0
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
    assert report["metric"] == "Acc-2_non0" and report["secondary"] == "MAE"
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
    written = write(report, report_path(path))
    assert written.name == "seed-1111.robustness.json" and read(written)["curves"] == json.loads(
        json.dumps(report["curves"])
    )


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
        data = replace(loaded[1], splits={"test": corrupt(test, chosen, 1.0, generator(0, "text", 9), None)})
        features[name] = rebuild(checkpoint, result, data, catalog, device="cpu").data.splits["test"].tensors
    assert not torch.equal(features["clean"]["text@clip-text"], features["text"]["text@clip-text"])
    assert torch.equal(features["clean"]["image@clip-image"], features["text"]["image@clip-image"])


def test_cli_on_a_frozen_encoder_run_keeps_clean_cache_entries(catalog, tmp_path, monkeypatch):
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

    outcome = runner.invoke(cli, ["robustness", "--run", str(path), "--data-root", str(folder), "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    assert "| text " in outcome.stdout and "| image " in outcome.stdout and "clean " in outcome.stdout
    report = read(report_path(path))
    assert report["clean_matches_result"] is True and report["test_samples"] == 2  # floor(n_c / 10) per class
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

    board = runner.invoke(cli, ["leaderboard", "--results", "results", "--out", "boards", "--robustness"])
    assert board.exit_code == 0, board.output
    page = Path("boards/folder-tweets.md").read_text()
    assert "### Robustness" in page and "RR text" in page and "RR all" in page


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
        corrupt(split(), [TARGETS["text"]], 0.5, generator(0, "text", 5), unk=None)


def fake_report(row, seed, relative, effective=None):
    return {
        "dataset": "ch-sims",
        "protocol": "mmsa-1",
        "row": row,
        "seed": seed,
        "metric": "Acc-2",
        "clean": {"Acc-2": 0.8 + 0.01 * seed},
        "curves": {"text": {}, "audio": {}, "all": {}},
        "summary": {"relative": relative, "effective": effective},
    }


def test_leaderboard_robustness_table():
    results = seeds("best", [0.8, 0.81]) + seeds("far", [0.7, 0.71])
    reports = [
        fake_report("best", 0, {"text": 0.6, "audio": 0.7, "all": 0.5}, {"text": 0.01, "audio": None, "all": 0.03}),
        fake_report("best", 1, {"text": 0.62, "audio": 0.7, "all": 0.5}, {"text": 0.03, "audio": None, "all": 0.05}),
        fake_report("far", 0, {"text": 0.4, "audio": 0.3, "all": 0.2}),
    ]
    page = render_dataset("ch-sims", results, robustness=reports)
    table = page.split("### Robustness")[1]
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
    best = next(line for line in table.splitlines() if line.startswith("| best "))
    assert "80.50 ± 0.71" in best and "0.6100 ± 0.0141" in best and "+0.0200 ± 0.0141" in best
    far = next(line for line in table.splitlines() if line.startswith("| far "))
    assert "| 1 " in far and "0.3000" in far and "—" in far
    assert "### Robustness" not in render_dataset("ch-sims", results)
