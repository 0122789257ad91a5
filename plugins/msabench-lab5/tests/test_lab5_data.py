"""Lab5's own files: train.txt and test_without_label.txt (guid,tag), read and written back in their format.
(The shared image-text reading, broken files and splits are tested by the host, on MVSA.)"""

import pytest

from msabench import DataError
from msabench.formats import sha256
from msabench_lab5.data import Lab5, Lab5Dev, write_lab5


def test_lab5_format_errors(tmp_path):
    folder = write_lab5(tmp_path, n=6)
    (folder / "train.txt").write_text("guid,tag\n1,positive\n2,happy\n")
    with pytest.raises(DataError, match=r"train.txt:3: expected 'guid,negative\|neutral\|positive'"):
        Lab5(folder).load()
    (folder / "train.txt").write_text("guid,tag\n1,positive\n1,negative\n")
    with pytest.raises(DataError, match="guid 1 appears twice"):
        Lab5(folder).load()


def test_lab5_unlabelled_and_prediction_file_format(tmp_path):
    folder = write_lab5(tmp_path, n=8, unlabelled=3)
    split = Lab5(folder).unlabelled()
    assert split.ids == ["9", "10", "11"] and "label" not in split.tensors and len(split.raw["image"]) == 3
    Lab5(folder).write_predictions(tmp_path / "out.txt", ["11", "9"], ["positive", "negative"])
    assert (tmp_path / "out.txt").read_text() == "guid,tag\n9,negative\n10,null\n11,positive\n"


def test_lab5_dev_is_lab5s_reader_and_split_under_its_own_name(tmp_path):
    folder = write_lab5(tmp_path / "lab5-dev", n=40)
    dev = Lab5Dev(tmp_path, verify=False).load()  # the data root holding lab5-dev/, or the folder itself
    full = Lab5(folder).load()
    assert dev.name == "lab5-dev" and Lab5Dev(tmp_path).directory == folder == Lab5Dev(folder).directory
    assert {name: split.ids for name, split in dev.splits.items()} == {n: s.ids for n, s in full.splits.items()}
    assert dev.provenance["split"] == {"kind": "stratified", "seed": 42, "fractions": [0.8, 0.1, 0.1]}
    assert sum(dev.provenance["sizes"].values()) == 40 and dev.hparams_from == "mvsa-single"
    assert Lab5Dev.sizes == {"train": 1201, "valid": 151, "test": 148}
    other = Lab5Dev(folder, verify=False, split_seed=7).load()
    assert other.splits["test"].ids != dev.splits["test"].ids and other.provenance["split"]["seed"] == 7
    # Where the files lay is recorded below the data root, never as this machine's path.
    assert dev.provenance["folder"] == "lab5-dev" and Lab5(folder).load().provenance["folder"] == "."


def test_lab5_dev_results_are_verified_only_when_its_pinned_files_match(tmp_path, monkeypatch):
    folder = write_lab5(tmp_path / "lab5-dev", n=12)
    assert Lab5Dev(folder, verify=False).load().provenance["verified"] is False  # not the pinned train.txt
    pinned = {**Lab5Dev.files, "train.txt": sha256(folder / "train.txt")}
    monkeypatch.setattr(Lab5Dev, "files", pinned)
    data = Lab5Dev(folder).load()
    assert data.provenance["verified"] is True and data.provenance["files"] == {"train.txt": pinned["train.txt"]}
    assert Lab5(folder).load().provenance["verified"] is False  # lab5 publishes no SHA-256


def test_lab5_and_lab5_dev_refuse_each_others_files(tmp_path, monkeypatch):
    folder = write_lab5(tmp_path / "lab5-dev", n=12)
    with pytest.raises(DataError, match="lab5-dev: .*train.txt has SHA-256 .* --no-verify") as error:
        Lab5Dev(folder).load()  # not lab5-dev's pinned train.txt
    assert "\n" not in str(error.value)
    monkeypatch.setattr(Lab5, "belongs_to", {sha256(folder / "train.txt"): "lab5-dev"})
    with pytest.raises(DataError, match="train.txt is lab5-dev's: run it as --dataset lab5-dev, so that"):
        Lab5(folder).load()
    assert Lab5Dev.belongs_to == {} and Lab5Dev(folder, verify=False).load().name == "lab5-dev"
