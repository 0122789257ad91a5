"""Lab5's own files: train.txt and test_without_label.txt (guid,tag), read and written back in their format.
(The shared image-text reading, broken files and splits are tested by the host, on MVSA.)"""

import pytest

from msabench import DataError
from msabench_lab5.data import Lab5, write_lab5


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
