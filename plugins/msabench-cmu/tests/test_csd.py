"""The computational-sequence reader on tiny .csd files written with h5py, and the SDK's standard folds."""

import h5py
import numpy as np
import pytest

from msabench import DataError
from msabench_cmu import FOLDS, fold_of, open_csd, write_csd


def test_a_label_sequence_round_trips_with_its_metadata(tmp_path):
    features = np.array([[1.5], [-0.25]], dtype=np.float32)
    times = np.array([[0.0, 1.5], [1.5, 4.0]])
    metadata = {"dataset name": "CMU-MOSI", "dimension names": ["sentiment score"]}
    path = write_csd(tmp_path / "labels.csd", "Opinion Segment Labels", {"v1": (features, times)}, metadata)
    with open_csd(path) as sequence:
        assert sequence.name == "Opinion Segment Labels" and sequence.videos == ["v1"] and len(sequence) == 1
        assert sequence.dataset == "CMU-MOSI"
        assert sequence.metadata["dimension names"] == ["sentiment score"]
        assert sequence.metadata["root name"] == "Opinion Segment Labels"
        segments = sequence["v1"]
        assert segments.features.dtype == np.float32 and segments.features.tolist() == [[1.5], [-0.25]]
        assert segments.intervals.tolist() == [[0.0, 1.5], [1.5, 4.0]] and len(segments) == 2
        assert "v2" not in sequence
        with pytest.raises(KeyError):
            sequence["v2"]
    assert not sequence.file  # closed


def test_words_and_wide_features_and_plain_text_metadata(tmp_path):
    words = np.array([[b"oh"], [b"sp"], [b"good"]], dtype="S12")
    path = write_csd(tmp_path / "words.csd", "words", {"v": (words, np.zeros((3, 2)))})
    with h5py.File(path, "a") as handle:  # the SDK's word file holds free text, not JSON, in some fields
        del handle["words/metadata/root name"]
        handle["words/metadata"].create_dataset("root name", (1,), dtype=h5py.special_dtype(vlen=bytes), data=[b"asdf"])
    with open_csd(path) as sequence:
        assert sequence["v"].words() == ["oh", "sp", "good"]
        assert sequence.metadata["root name"] == "asdf" and sequence.dataset is None
    covarep = np.arange(12, dtype=np.float32).reshape(4, 3)  # any [n, d] sequence: d = 3 here
    with open_csd(write_csd(tmp_path / "covarep.csd", "COVAREP", {"v": (covarep, np.zeros((4, 2)))})) as sequence:
        assert sequence["v"].features.shape == (4, 3)


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_errors_name_the_file_and_say_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="no such file") as error:
        open_csd(tmp_path / "missing.csd")
    assert str(tmp_path / "missing.csd") in one_line(error)
    (tmp_path / "text.csd").write_text("video,score\n")
    with pytest.raises(DataError, match="is not an HDF5 file") as error:
        open_csd(tmp_path / "text.csd")
    one_line(error)
    data = {f"v{i}": (np.random.default_rng(i).normal(size=(400, 30)), np.zeros((400, 2))) for i in range(4)}
    whole = write_csd(tmp_path / "whole.csd", "FACET", data).read_bytes()
    (tmp_path / "cut.csd").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as error, open_csd(tmp_path / "cut.csd") as sequence:
        [sequence[video] for video in sequence]
    assert "cut.csd" in one_line(error)
    with h5py.File(tmp_path / "layout.csd", "w") as handle:
        handle.create_group("a").create_group("data")
        handle.create_group("b")
    with pytest.raises(DataError, match="not a computational sequence: expected one top-level group") as error:
        open_csd(tmp_path / "layout.csd")
    one_line(error)


def test_a_video_without_intervals_or_with_mismatched_rows_is_refused(tmp_path):
    path = write_csd(tmp_path / "x.csd", "x", {"v": (np.zeros((3, 1)), np.zeros((2, 2)))})
    with open_csd(path) as sequence, pytest.raises(DataError, match=r"video 'v' has features \(3, 1\) and interv"):
        sequence["v"]
    with h5py.File(path, "a") as handle:
        del handle["x/data/v/intervals"]
    with open_csd(path) as sequence, pytest.raises(DataError, match=r"video 'v' holds \['features'\]"):
        sequence["v"]


def test_the_sdks_standard_folds():
    sizes = {name: {split: len(videos) for split, videos in folds.items()} for name, folds in FOLDS.items()}
    assert sizes == {
        "mosi": {"train": 52, "valid": 10, "test": 31},
        "mosei": {"train": 2249, "valid": 300, "test": 678},
    }
    for folds in FOLDS.values():
        train, valid, test = (set(folds[split]) for split in ("train", "valid", "test"))
        assert not (train & valid or train & test or valid & test)
    assert FOLDS["mosi"]["train"][:2] == ("2iD-tVS8NPw", "8d-gEyoeBzc") and FOLDS["mosi"]["test"][-1] == "c7UH_rxdZv4"
    assert fold_of("mosi")["_dI--eQ6qVU"] == "valid" and len(fold_of("mosei")) == 3227
    assert "-iRBcNs9oI8" in FOLDS["mosei"]["train"]
