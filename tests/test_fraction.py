"""`--data-option train_fraction=F`: a seeded, stratified fraction of any dataset's train split (DMMSA's Table 4
learning curve), applied by the host after the dataset loads; valid and test untouched; recorded in the provenance
and the row's variant."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from msabench import Data, DataError, Split, Task
from msabench.metrics import polarity
from msabench.splits import subsample_train
from msabench_core.synthetic import SyntheticMOSI


def test_polarity_is_the_acc3_class_of_each_family():
    mosi = polarity("mosi", [-2.0, -0.6, -0.5, 0.0, 0.5, 0.6, 2.5])
    assert mosi.tolist() == [0, 0, 1, 1, 1, 2, 2]  # round(clip(y, -1, 1)), halves to even: |y| <= 0.5 is neutral
    sims = polarity("sims", [-1.0, -0.1, -0.0999, 0.1, 0.1001, 1.0])
    assert sims.tolist() == [0, 0, 1, 1, 2, 2]  # (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]
    with pytest.raises(ValueError, match="only the regression families"):
        polarity("classification", [0, 1])


def regression_data(labels, family="mosi"):
    """Data with the given train labels (ids t0, t1, ...) and small valid/test splits."""

    def split(name, values):
        n = len(values)
        tensors = {"label": torch.tensor(values, dtype=torch.float32), "text": torch.arange(n * 2.0).reshape(n, 1, 2)}
        return Split(name, [f"{name[0]}{i}" for i in range(n)], tensors, {"raw_text": [f"text {i}" for i in range(n)]})

    splits = {"train": split("train", labels), "valid": split("valid", [0.0, 1.0]), "test": split("test", [-1.0])}
    task = Task("regression", family, label_range=(-3.0, 3.0))
    return Data("toy", task, splits, {"files": {"toy.pkl": "abc"}, "sizes": {"train": len(labels)}})


# 20 negative, 10 neutral, 5 positive training samples (MOSI bins), interleaved.
LABELS = [-2.0] * 20 + [0.2] * 10 + [1.4] * 5
ORDER = np.random.default_rng(0).permutation(len(LABELS))
MIXED = [LABELS[i] for i in ORDER]


def test_each_acc3_class_keeps_its_share_and_valid_and_test_stay_whole():
    data = regression_data(MIXED)
    half = subsample_train(data, 0.5, seed=7)
    train = half.splits["train"]
    kept = polarity("mosi", train.tensors["label"].numpy()).tolist()
    assert (kept.count(0), kept.count(1), kept.count(2)) == (10, 5, 3)  # round(2.5) = 3, halves up
    assert len(train) == 18 and len(train.raw["raw_text"]) == 18 and train.tensors["text"].shape == (18, 1, 2)
    assert half.splits["valid"] is data.splits["valid"] and half.splits["test"] is data.splits["test"]
    positions = [int(sample[1:]) for sample in train.ids]
    assert positions == sorted(positions)  # split order kept
    for sample, label, text in zip(train.ids, train.tensors["label"].tolist(), train.raw["raw_text"], strict=True):
        i = int(sample[1:])
        assert label == pytest.approx(MIXED[i]) and text == f"text {i}"  # rows stay together
    record = half.provenance["train_fraction"]
    assert record == {
        "fraction": 0.5,
        "seed": 7,
        "strata": "acc-3 classes",
        "kept": 18,
        "of": 35,
        "per_stratum": {"0": [10, 20], "1": [5, 10], "2": [3, 5]},
    }
    assert half.provenance["sizes"] == {"train": 18} and data.provenance["sizes"] == {"train": 35}


def test_the_draw_follows_its_seed_and_a_small_stratum_keeps_one_sample():
    data = regression_data(MIXED)

    def kept(seed):
        return subsample_train(data, 0.1, seed=seed).splits["train"].ids

    assert kept(1) == kept(1) and kept(1) != kept(2)
    tenth = subsample_train(data, 0.1, seed=1).provenance["train_fraction"]["per_stratum"]
    assert tenth == {"0": [2, 20], "1": [1, 10], "2": [1, 5]}  # round(0.5) = 1 and never fewer than one


def test_sims_bins_and_classes_stratify_too():
    sims = subsample_train(regression_data([-0.8, -0.8, 0.0, 0.0, 0.6, 0.6, 0.6, 0.6], "sims"), 0.5, seed=0)
    assert sims.provenance["train_fraction"]["per_stratum"] == {"0": [1, 2], "1": [1, 2], "2": [2, 4]}
    classes = Task("classification", "classification", classes=("negative", "neutral", "positive"))
    labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 12)
    split = Split("train", [str(i) for i in range(20)], {"label": labels})
    data = Data("toy", classes, {"train": split}, {"labels": {"train": {"negative": 6, "neutral": 2, "positive": 12}}})
    quarter = subsample_train(data, 0.25, seed=0)
    assert quarter.provenance["train_fraction"]["per_stratum"] == {"0": [2, 6], "1": [1, 2], "2": [3, 12]}
    assert quarter.provenance["labels"]["train"] == {"negative": 2, "neutral": 1, "positive": 3}
    assert quarter.provenance["train_fraction"]["strata"] == "class"


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True, "half"])
def test_a_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(DataError, match="expected a number in \\(0, 1\\]"):
        subsample_train(regression_data(MIXED), fraction)


def tiny(*options):
    args = ["run", "-m", "tiny", "-d", "synthetic-mosi", "--seeds", "1111", "--max-epochs", "1", "--no-progress", "-q"]
    return args + [part for option in options for part in ("--data-option", option)]


def test_the_command_trains_on_the_fraction_and_records_it(invoke, tmp_path):
    done = invoke(*tiny("train_fraction=0.25"))
    assert done.exit_code == 0, done.output
    (path,) = (tmp_path / "results/synthetic-mosi").glob("tiny+*/*/seed-1111.json")
    assert path.parent.parent.name == "tiny+data.train_fraction=0.25"
    result = json.loads(path.read_text())
    assert result["variant"] == "data.train_fraction=0.25"
    record = result["data"]["train_fraction"]
    assert record["fraction"] == 0.25 and record["seed"] == 42 and record["of"] > record["kept"] > 0
    assert sum(kept for kept, _ in record["per_stratum"].values()) == record["kept"]
    full = invoke(*tiny())
    assert full.exit_code == 0, full.output
    whole = json.loads(next((tmp_path / "results/synthetic-mosi/tiny").rglob("seed-1111.json")).read_text())
    assert "train_fraction" not in whole["data"] and whole["variant"] == ""
    assert whole["predictions"]["ids"] == result["predictions"]["ids"]  # the same test split
    assert record["of"] == SyntheticMOSI.sizes["train"] and record["kept"] == pytest.approx(record["of"] / 4, abs=2)


def test_train_fraction_one_is_the_full_row_and_bad_values_are_one_line_errors(invoke, tmp_path):
    done = invoke(*tiny("train_fraction=1"))
    assert done.exit_code == 0, done.output
    assert [p.parent.parent.name for p in (tmp_path / "results/synthetic-mosi").rglob("seed-1111.json")] == ["tiny"]
    for option, message in [
        ("train_fraction=2", "train_fraction=2: expected a number in (0, 1]"),
        ("train_fraction_seed=3", "train_fraction_seed draws the samples of train_fraction; give train_fraction too"),
    ]:
        refused = invoke(*tiny(option))
        assert refused.exit_code != 0 and message in refused.output and "Traceback" not in refused.output
    seeded = invoke(*tiny("train_fraction=0.5", "train_fraction_seed=x"))
    assert seeded.exit_code != 0 and "train_fraction_seed=x: expected a whole number" in seeded.output
