"""IEMOCAP in MulT's layout: the loader (lengths from zero padding, row ids, checked labels, a user-supplied
SHA-256), the synthetic version, and the iemocap metrics (MulT's eval_iemocap)."""

import hashlib
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from msabench import DataError, evaluate
from msabench.api import Request, plan
from msabench.cli import cli
from msabench.formats import write_pickle
from msabench_core.iemocap import IEMOCAP
from msabench_core.synthetic import SyntheticIEMOCAP

RELATIVE = "IEMOCAP/iemocap_data_noalign.pkl"
DIMS = {"text": 300, "audio": 74, "vision": 35}


def one_hot(present):
    """(absent, present) pairs from [N, 4] 0/1."""
    present = np.asarray(present)
    return np.stack([1 - present, present], axis=-1).astype(np.float32)


def split(lengths, steps, front=True, seed=0):
    """A split whose sequences are padded with zero frames (at the front, as MulT's, or at the back)."""
    rng = np.random.default_rng(seed)
    n = len(lengths["text"])
    part = {"labels": one_hot(np.eye(4, dtype=int)[np.arange(n) % 4])}
    for key, dim in DIMS.items():
        values = rng.standard_normal((n, steps[key], dim)).astype(np.float32) + 3  # never exactly 0
        for row, length in enumerate(lengths[key]):
            pad = steps[key] - length
            if front:
                values[row, :pad] = 0
            else:
                values[row, length:] = 0
        part[key] = values
    return part


def write_iemocap(root, front=True):
    steps = {"text": 5, "audio": 8, "vision": 6}
    lengths = {"text": [5, 3, 2, 4], "audio": [8, 1, 6, 3], "vision": [2, 6, 6, 4]}
    data = {name: split(lengths, steps, front, seed) for seed, name in enumerate(("train", "valid", "test"))}
    data["train"]["audio"][1, -1, 0] = -np.inf  # MulT's audio has -inf values; this one sits in a real frame
    write_pickle(root / RELATIVE, data)
    return data, lengths


@pytest.mark.parametrize("front", [True, False])
def test_loader_reads_lengths_from_the_zero_padding_and_moves_them_to_the_back(tmp_path, front):
    raw, lengths = write_iemocap(tmp_path, front)
    data = IEMOCAP(tmp_path).load()
    train = data.splits["train"]
    assert data.provenance["padding"] == dict.fromkeys(DIMS, "front" if front else "back")
    for key in DIMS:
        assert train.tensors[f"{key}_lengths"].tolist() == lengths[key]
        for row, length in enumerate(lengths[key]):
            frames = raw["train"][key][row]
            real = frames[-length:] if front else frames[:length]
            real = np.where(np.isfinite(real), real, 0)
            assert np.array_equal(train.tensors[key][row, :length].numpy(), real)
            assert train.tensors[key][row, length:].abs().sum() == 0
    assert train.ids == ["0", "1", "2", "3"] and data.provenance["ids"].startswith("row numbers")
    assert train.tensors["label"].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert data.provenance["nonfinite"] == {"train/audio": 1}
    assert data.task.kind == "multilabel" and data.task.classes == ("Neutral", "Happy", "Sad", "Angry")
    assert data.provenance["verified"] is False  # no SHA-256 is published
    assert set(data.specs) == {"text", "audio", "vision"}


def test_an_all_zero_sequence_gets_length_one_and_is_counted(tmp_path, caplog):
    raw, _ = write_iemocap(tmp_path)
    raw["valid"]["vision"][2] = 0
    write_pickle(tmp_path / RELATIVE, raw)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        data = IEMOCAP(tmp_path).load()
    assert data.splits["valid"].tensors["vision_lengths"][2] == 1
    assert data.provenance["empty"] == {"valid/vision": 1}
    assert "valid/vision: 1 sequences have no non-zero frame" in caplog.text


def test_labels_that_are_not_one_hot_pairs_are_refused_naming_the_row(tmp_path):
    raw, _ = write_iemocap(tmp_path)
    raw["test"]["labels"][3, 1] = [1, 1]
    write_pickle(tmp_path / RELATIVE, raw)
    with pytest.raises(DataError, match=r"test/labels of row 3 is .*each pair must be one-hot"):
        IEMOCAP(tmp_path).load()


def test_wrong_feature_dims_are_refused(tmp_path):
    raw, _ = write_iemocap(tmp_path)
    raw["train"]["audio"] = raw["train"]["audio"][:, :, :70]
    write_pickle(tmp_path / RELATIVE, raw)
    with pytest.raises(DataError, match="train/audio has feature dim 70; iemocap has 74"):
        IEMOCAP(tmp_path).load()


def test_a_user_supplied_sha256_verifies_or_refuses_the_file(tmp_path):
    write_iemocap(tmp_path)
    digest = hashlib.sha256((tmp_path / RELATIVE).read_bytes()).hexdigest()
    data = IEMOCAP(tmp_path, sha256=digest.upper()).load()
    assert data.provenance["verified"] is True and data.provenance["files"] == {RELATIVE: digest}
    with pytest.raises(DataError, match="has SHA-256 .* but the published file has 0000"):
        IEMOCAP(tmp_path, sha256="0" * 64).load()
    unverified = IEMOCAP(tmp_path, sha256="0" * 64, verify=False).load()
    assert unverified.provenance["verified"] is False
    with pytest.raises(DataError, match="expected the file's SHA-256 as 64 hexadecimal digits"):
        IEMOCAP(tmp_path, sha256="abc")
    # The digest names the data a run reads: the same row as without it, not a variant.
    pinned = plan(Request("lf-lstm", "iemocap", data_root=str(tmp_path), data_options={"sha256": digest}))
    assert pinned.variant == plan(Request("lf-lstm", "iemocap", data_root=str(tmp_path))).variant == ""


def test_data_info_says_no_sha256_is_published_and_how_to_give_one(tmp_path):
    outcome = CliRunner().invoke(cli, ["data", "info", "iemocap", "--data-root", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    assert "task:     multilabel, metrics: iemocap, classes: Neutral, Happy, Sad, Angry" in outcome.output
    assert f"{tmp_path / RELATIVE} (missing); published SHA-256: none published (pass --data-option sha256=" in (
        outcome.output
    )


def test_missing_file_names_the_path_and_the_source(tmp_path):
    with pytest.raises(DataError, match=r"iemocap_data_noalign.pkl .*does not exist.*Multimodal-Transformer"):
        IEMOCAP(tmp_path).load()


def test_synthetic_iemocap_has_one_emotion_per_sample_and_round_trips_through_its_file(tmp_path):
    generated = SyntheticIEMOCAP(tmp_path).load()
    labels = generated.splits["train"].tensors["label"]
    assert labels.shape == (600, 4) and labels.sum(1).eq(1).all()
    assert labels.float().mean(0).min() > 0.15 and labels.float().mean(0).max() < 0.35  # roughly balanced
    assert generated.provenance["padding"] == dict.fromkeys(DIMS, "front")
    lengths = generated.splits["train"].tensors["audio_lengths"]
    assert lengths.min() >= 20 and lengths.max() == 40
    outcome = CliRunner().invoke(cli, ["data", "synth", "synthetic-iemocap", "--data-root", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    from_file = SyntheticIEMOCAP(tmp_path).load()
    assert from_file.provenance["verified"] is True and from_file.provenance["source"] == "file"
    assert from_file.splits["test"].tensors["label"].equal(generated.splits["test"].tensors["label"])


def test_iemocap_metrics_are_per_emotion_accuracy_and_weighted_f1_and_their_means():
    truth = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    guess = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]])
    scores = evaluate("iemocap", guess, truth)
    # Neutral: truth 1 0 0 1, guess 1 0 1 1 -> accuracy 3/4; F1 of "absent" 2/3 and of "present" 4/5, support 2 each
    assert scores["Acc_Neutral"] == 0.75 and scores["F1_Neutral"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # Happy: truth 0 1 0 0, guess all 0 -> accuracy 3/4; F1 absent 6/7 (support 3), present 0 (support 1)
    assert scores["Acc_Happy"] == 0.75 and scores["F1_Happy"] == pytest.approx(6 / 7 * 3 / 4)
    assert scores["Acc_Sad"] == scores["Acc_Angry"] == scores["F1_Sad"] == scores["F1_Angry"] == 1.0
    assert scores["Acc_mean"] == pytest.approx((0.75 + 0.75 + 1 + 1) / 4)
    assert scores["F1_mean"] == pytest.approx(((2 / 3 + 4 / 5) / 2 + 6 / 7 * 3 / 4 + 2) / 4)
    assert list(scores)[:2] == ["Acc_mean", "F1_mean"]
