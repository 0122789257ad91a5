"""Reading data safely (DESIGN.md section 3): the data root, SHA-256 checks, the restricted unpickler,
MMSA's pickle layout, and the synthetic datasets."""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import logging
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from msabench.components import Task
from msabench.errors import DataError
from msabench.formats import check_file, mmsa_data, read_pickle, sha256, write_pickle
from msabench.paths import data_root
from msabench.synthetic import SPECIALS
from msabench_core.mmsa import MOSI, SIMS, MOSIAligned, SIMSv2
from msabench_core.synthetic import SyntheticMOSI, SyntheticSIMS

MOSI_FILE = "MOSI/Processed/unaligned_50.pkl"
MOSI_SHA = "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524"


# --- data root -------------------------------------------------------------------------------------


def test_data_root_explicit_argument_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_root(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert MOSI(tmp_path / "explicit").root == tmp_path / "explicit"


def test_data_root_environment_before_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "env"
    assert MOSI().root == tmp_path / "env"


def test_data_root_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MSABENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "msabench" / "data"


@pytest.mark.parametrize("xdg", [None, ""])
def test_data_root_default_under_home(tmp_path, monkeypatch, xdg):
    monkeypatch.delenv("MSABENCH_DATA", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".local" / "share" / "msabench" / "data"


def test_data_root_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root("~/msa") == tmp_path / "home" / "msa"
    monkeypatch.setenv("MSABENCH_DATA", "~/from-env")
    assert data_root() == tmp_path / "home" / "from-env"


def test_data_root_empty_environment_variable_is_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_DATA", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "msabench" / "data"


# --- the restricted unpickler ----------------------------------------------------------------------


class RunsShell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class WritesFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@dataclass
class Plain:
    x: int = 1


def dump(tmp_path: Path, obj, protocol: int = 4, name: str = "file.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("payload", [RunsShell, WritesFile])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, payload, protocol):
    marker = tmp_path / "marker"
    path = dump(tmp_path, {"train": {"audio": np.zeros(3)}, "x": payload(marker)}, protocol)
    with pytest.raises(DataError, match="refused to load") as error:
        read_pickle(path)
    assert str(path) in str(error.value)
    assert "nothing in it ran" in str(error.value)
    assert ("system" if payload is RunsShell else "open") in str(error.value)
    assert not marker.exists()


def test_malicious_object_inside_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "marker"
    array = np.empty(2, dtype=object)
    array[:] = ["fine", RunsShell(marker)]
    path = dump(tmp_path, {"id": array})
    with pytest.raises(DataError, match=r"refused to load (posix|os)\.system"):
        read_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("obj", "refused"),
    [
        (collections.Counter("aab"), "collections.Counter"),
        (Plain(), f"{__name__}.Plain"),
        ({"fine": [1, 2], "bad": (1, [Plain()])}, f"{__name__}.Plain"),
        (collections.defaultdict(list), "collections.defaultdict"),
    ],
)
def test_arbitrary_classes_are_refused(tmp_path, obj, refused):
    path = dump(tmp_path, obj)
    with pytest.raises(DataError, match="refused to load") as error:
        read_pickle(path)
    assert refused in str(error.value)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_numpy_arrays_and_containers_load(tmp_path, protocol):
    obj = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "f64": np.linspace(-1, 1, 5),
        "i64": np.array([1, -2, 3**30], dtype=np.int64),
        "str": np.array(["a", "ü", "多"], dtype=object),
        "bool": np.array([True, False, True]),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "scalar": np.float64(2.5),
        "int_scalar": np.int64(7),
        "nested": {"list": [1, 2.5, "x", None, (1, 2)], "dict": {"inner": np.zeros((2, 1, 3), dtype=np.float32)}},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "bytes": b"\x00\xff",
    }
    path = dump(tmp_path, obj, protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy.core deprecation warnings
        loaded = read_pickle(path)
    assert set(loaded) == set(obj)
    for key in ("f32", "f64", "i64", "str", "bool", "fortran"):
        assert loaded[key].dtype == obj[key].dtype, key
        assert loaded[key].shape == obj[key].shape, key
        np.testing.assert_array_equal(loaded[key], obj[key])
    assert loaded["scalar"] == 2.5 and isinstance(loaded["scalar"], np.float64)
    assert loaded["int_scalar"] == 7
    assert loaded["nested"]["list"] == [1, 2.5, "x", None, (1, 2)]
    assert loaded["nested"]["dict"]["inner"].shape == (2, 1, 3)
    assert list(loaded["ordered"]) == ["b", "a"]
    assert loaded["bytes"] == b"\x00\xff"


def test_zero_size_arrays_load_with_current_protocols(tmp_path):
    for protocol in (3, 4, 5):
        path = dump(tmp_path, {"inner": np.zeros((2, 0, 3), dtype=np.float32)}, protocol)
        assert read_pickle(path)["inner"].shape == (2, 0, 3)


@pytest.mark.parametrize(
    ("protocol", "obj"),
    [
        (2, {"audio": np.zeros((2, 0, 5), dtype=np.float32)}),
        (2, {"a": b""}),
        (3, {"tags": {"a", "b"}}),
        (2, {"tags": frozenset("a")}),
    ],
    ids=["p2-zero-size-array", "p2-empty-bytes", "p3-set", "p2-frozenset"],
)
def test_builtin_values_of_older_protocols_load(tmp_path, protocol, obj):
    loaded = read_pickle(dump(tmp_path, obj, protocol))
    assert set(loaded) == set(obj)


@pytest.mark.parametrize("protocol", [2, 3])
def test_numpy1_pickles_referencing_numpy_core_load(tmp_path, protocol):
    """numpy 1.x wrote `numpy.core.multiarray._reconstruct`; numpy 2 calls the module numpy._core."""
    obj = {
        "audio": np.arange(6, dtype=np.float32).reshape(2, 3),
        "n": np.float64(1.25),
        "id": np.array(["a", "b"], dtype=object),
    }
    stream = pickle.dumps(obj, protocol=protocol)
    assert stream.count(b"cnumpy._core.multiarray\n") == 2  # _reconstruct and scalar
    old = stream.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy._core" not in old
    path = tmp_path / "old.pkl"
    path.write_bytes(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = read_pickle(path)
    np.testing.assert_array_equal(loaded["audio"], obj["audio"])
    assert loaded["audio"].dtype == np.float32
    assert loaded["n"] == 1.25
    assert list(loaded["id"]) == ["a", "b"]


def test_numpy_core_lookalike_module_is_refused(tmp_path):
    stream = pickle.dumps(np.zeros(2), protocol=2).replace(
        b"cnumpy._core.multiarray\n", b"cnumpy.coreevil.multiarray\n"
    )
    path = tmp_path / "evil.pkl"
    path.write_bytes(stream)
    with pytest.raises(
        DataError, match="refused to load numpy._coreevil.multiarray._reconstruct|refused to load numpy.coreevil"
    ):
        read_pickle(path)


def truncated_pickles(tmp_path: Path) -> list[Path]:
    stream = pickle.dumps({"train": {"audio": np.arange(2000, dtype=np.float32), "id": ["a", "b"]}}, protocol=4)
    paths = []
    for cut in (0, 1, 11, 40, len(stream) // 2, len(stream) - 1):
        path = tmp_path / f"cut-{cut}.pkl"
        path.write_bytes(stream[:cut])
        paths.append(path)
    return paths


def test_truncated_pickle_is_a_data_error(tmp_path):
    for path in truncated_pickles(tmp_path):
        with pytest.raises(DataError) as error:
            read_pickle(path)
        message = str(error.value)
        assert str(path) in message
        assert "truncated" in message or "corrupt" in message, message


def test_truncated_pickle_message_says_download_again(tmp_path):
    for path in truncated_pickles(tmp_path):
        with pytest.raises(DataError) as error:
            read_pickle(path)
        assert "download it again" in str(error.value), str(error.value)
        assert "not a plain data pickle" not in str(error.value)


def test_garbage_file_is_a_data_error(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match=str(path)):
        read_pickle(path)


def test_write_pickle_round_trip(tmp_path):
    obj = {"a": np.arange(3, dtype=np.int64), "b": ["x"]}
    write_pickle(tmp_path / "sub" / "x.pkl", obj)
    loaded = read_pickle(tmp_path / "sub" / "x.pkl")
    np.testing.assert_array_equal(loaded["a"], obj["a"])
    assert loaded["b"] == ["x"]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.pkl"]


# --- check_file and sha256 ------------------------------------------------------------------------


def test_check_file_missing_names_path_and_source(tmp_path):
    with pytest.raises(DataError) as error:
        check_file(
            tmp_path,
            "MOSI/Processed/unaligned_50.pkl",
            MOSI_SHA,
            verify=True,
            dataset="mosi",
            source="the MMSA release",
        )
    message = str(error.value)
    assert message.startswith("mosi: ")
    assert str(tmp_path / "MOSI" / "Processed" / "unaligned_50.pkl") in message
    assert "the MMSA release" in message
    assert "MSABENCH_DATA" in message and "--data-root" in message


def test_check_file_hash_mismatch_refused_with_no_verify_hint(tmp_path):
    (tmp_path / "f.pkl").write_bytes(b"abc")
    with pytest.raises(DataError) as error:
        check_file(tmp_path, "f.pkl", MOSI_SHA, verify=True, dataset="mosi", source="s")
    message = str(error.value)
    assert "--no-verify" in message
    assert MOSI_SHA in message
    assert hashlib.sha256(b"abc").hexdigest() in message


def test_check_file_unverified_when_opted_out(tmp_path, caplog):
    (tmp_path / "f.pkl").write_bytes(b"abc")
    with caplog.at_level(logging.WARNING, logger="msabench"):
        found = check_file(tmp_path, "f.pkl", MOSI_SHA, verify=False, dataset="mosi", source="s")
    assert found == {"path": "f.pkl", "sha256": hashlib.sha256(b"abc").hexdigest(), "verified": False}
    assert any("not the published file" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_check_file_matching_hash_is_verified(tmp_path, caplog):
    (tmp_path / "f.pkl").write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    with caplog.at_level(logging.WARNING, logger="msabench"):
        found = check_file(tmp_path, "f.pkl", digest, verify=True, dataset="mosi", source="s")
    assert found == {"path": "f.pkl", "sha256": digest, "verified": True}
    assert not caplog.records


def test_check_file_without_published_hash_is_unverified_but_loads(tmp_path):
    (tmp_path / "f.pkl").write_bytes(b"abc")
    found = check_file(tmp_path, "f.pkl", None, verify=True, dataset="ch-sims-v2", source="s")
    assert found["verified"] is False


def test_sha256_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert sha256(path) == hashlib.sha256(b"one").hexdigest()
    store = tmp_path / "cache" / "msabench" / "sha256.json"
    known = json.loads(store.read_text())
    stat = path.stat()
    key = f"{path.resolve()}:3:1000000000:{stat.st_ino}:{stat.st_ctime_ns}"
    assert known == {key: hashlib.sha256(b"one").hexdigest()}

    # The cache is what answers: a planted value comes back without re-hashing.
    store.write_text(json.dumps({key: "f" * 64}))
    assert sha256(path) == "f" * 64

    # Same size, new mtime: hashed again.
    path.write_bytes(b"two")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert sha256(path) == hashlib.sha256(b"two").hexdigest()

    # New size (mtime put back to the cached one): hashed again.
    path.write_bytes(b"three")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert sha256(path) == hashlib.sha256(b"three").hexdigest()
    assert len(json.loads(store.read_text())) == 3


def test_sha256_survives_a_corrupt_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = tmp_path / "cache" / "msabench" / "sha256.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    assert sha256(path) == hashlib.sha256(b"x" * 100).hexdigest()
    assert list(json.loads(store.read_text()).values()) == [hashlib.sha256(b"x" * 100).hexdigest()]


# --- MMSA layout ----------------------------------------------------------------------------------


def mmsa_split(rng, n, prefix, *, dims=(768, 5, 20), L=6, La=8, Lv=5, lengths=True, unimodal=False, bound=3.0):
    text_len = rng.integers(2, L + 1, n)
    text_len[0] = L
    ids = np.zeros((n, L), dtype=np.float32)
    mask = (np.arange(L)[None, :] < text_len[:, None]).astype(np.float32)
    ids[:] = rng.integers(1000, 2000, (n, L)) * mask
    ids[:, 0] = 101
    part = {
        "id": np.array([f"{prefix}{i}$_${i % 3}" for i in range(n)], dtype=object),
        "raw_text": np.array([f"words {i}" for i in range(n)], dtype=object),
        "text_bert": np.stack([ids, mask, np.zeros_like(ids)], axis=1),
        "text": rng.standard_normal((n, L, dims[0])).astype(np.float32),
        "audio": rng.standard_normal((n, La, dims[1])).astype(np.float32),
        "vision": rng.standard_normal((n, Lv, dims[2])).astype(np.float32),
        "regression_labels": np.round(rng.uniform(-bound, bound, n) * 5).astype(np.float32) / 5,
        "classification_labels": np.zeros(n, dtype=np.float32),
        "annotations": np.array(["Neutral"] * n, dtype=object),
    }
    if lengths:
        part["audio_lengths"] = list(rng.integers(1, La + 1, n))
        part["vision_lengths"] = rng.integers(1, Lv + 1, n).astype(np.int64)
    if unimodal:
        for key in "TAV":
            part[f"regression_labels_{key}"] = np.round(rng.uniform(-1, 1, n) * 5).astype(np.float32) / 5
    return part


def mmsa_raw(seed=0, sizes=(5, 3, 4), **kwargs):
    rng = np.random.default_rng(seed)
    return {
        split: mmsa_split(rng, n, split[:2], **kwargs)
        for split, n in zip(("train", "valid", "test"), sizes, strict=True)
    }


def put(root: Path, relative: str, raw) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(raw, protocol=4))
    return path


def test_mmsa_load_brings_arrays_through(tmp_path):
    raw = mmsa_raw()
    path = put(tmp_path, MOSI_FILE, raw)
    data = MOSI(tmp_path, verify=False).load()
    assert data.name == "mosi"
    assert data.task == Task("regression", "mosi", label_range=(-3.0, 3.0))
    assert data.synthetic is False and data.vocab_size == 30522 and data.tokenizer == "bert-base-uncased"
    assert list(data.splits) == ["train", "valid", "test"]
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 5, "valid": 3, "test": 4}
    for name, split in data.splits.items():
        part = raw[name]
        n = len(part["id"])
        t = split.tensors
        assert set(t) == {
            "text_bert",
            "text_lengths",
            "text",
            "audio",
            "audio_lengths",
            "vision",
            "vision_lengths",
            "label",
        }
        assert split.ids == list(part["id"]) and all(isinstance(i, str) for i in split.ids)
        assert t["text_bert"].dtype == torch.int64 and t["text_bert"].shape == (n, 3, 6)
        np.testing.assert_array_equal(t["text_bert"].numpy(), part["text_bert"].astype(np.int64))
        for key, shape in (("text", (n, 6, 768)), ("audio", (n, 8, 5)), ("vision", (n, 5, 20))):
            assert t[key].dtype == torch.float32 and t[key].shape == shape
            np.testing.assert_array_equal(t[key].numpy(), part[key])
        assert t["label"].dtype == torch.float32 and t["label"].shape == (n,)
        np.testing.assert_array_equal(t["label"].numpy(), part["regression_labels"])
        # lengths: text from the mask, audio/vision from *_lengths
        assert t["text_lengths"].dtype == torch.int64
        assert t["text_lengths"].tolist() == part["text_bert"][:, 1].sum(1).astype(int).tolist()
        assert t["audio_lengths"].tolist() == [int(v) for v in part["audio_lengths"]]
        assert t["vision_lengths"].tolist() == part["vision_lengths"].tolist()
    specs = data.specs
    assert specs["text_bert"].shape == (3, 6) and specs["text_bert"].vocab_size == 30522
    assert specs["text"].shape == (6, 768) and specs["text"].vocab_size is None
    assert specs["audio"].dim == 5 and specs["vision"].dim == 20
    assert data.provenance == {
        "source": "file",
        "files": {MOSI_FILE: hashlib.sha256(path.read_bytes()).hexdigest()},
        "verified": False,
        "synthetic": False,
        "nonfinite": {},
        "sizes": {"train": 5, "valid": 3, "test": 4},
    }


@pytest.mark.parametrize(
    ("key", "row", "value", "message"),
    [
        (
            "audio_lengths",
            2,
            9,
            r"train/audio_lengths of row 2 \(id tr2\$_\$2\) is 9, outside 1..8 \(its audio has 8 steps\)",
        ),
        ("audio_lengths", 0, 0, r"train/audio_lengths of row 0 \(id tr0\$_\$0\) is 0, outside 1..8"),
        ("vision_lengths", 3, -1, r"train/vision_lengths of row 3 \(id tr3\$_\$0\) is -1, outside 1..5"),
        ("regression_labels", 1, 99.0, r"train/regression_labels of row 1 \(id tr1\$_\$1\) is 99, outside -3..3"),
    ],
)
def test_mmsa_lengths_and_labels_out_of_range_are_refused_naming_split_and_row(tmp_path, key, row, value, message):
    raw = mmsa_raw()
    raw["train"][key] = np.array(raw["train"][key], dtype=np.float32 if "labels" in key else np.int64)
    raw["train"][key][row] = value
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=message + r".*pass --data-option repair=true"):
        MOSI(tmp_path, verify=False).load()


def test_an_all_padding_text_row_is_refused(tmp_path):
    raw = mmsa_raw()
    raw["valid"]["text_bert"][1, 1] = 0
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=r"valid/text_bert of row 1 .* is 0, outside 1..6 \(its mask marks no token\)"):
        MOSI(tmp_path, verify=False).load()


def test_repair_clips_lengths_and_labels_and_records_the_counts(tmp_path, caplog):
    raw = mmsa_raw()
    raw["train"]["audio_lengths"] = [0, 8, 9, 100, 3]
    raw["train"]["vision_lengths"] = np.array([5, 6, -1, 1, 0])
    raw["train"]["text_bert"][1, 1] = 0  # an all-padding text row
    raw["test"]["regression_labels"][2] = 99.0
    put(tmp_path, MOSI_FILE, raw)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        data = MOSI(tmp_path, verify=False, repair=True).load()
    train = data.splits["train"].tensors
    assert train["audio_lengths"].tolist() == [1, 8, 8, 8, 3]
    assert train["vision_lengths"].tolist() == [5, 5, 1, 1, 1]
    assert train["text_lengths"][1].item() == 1
    assert data.splits["test"].tensors["label"][2].item() == 3.0
    assert data.provenance["repairs"] == {
        "train/text_bert": 1,
        "train/audio_lengths": 3,
        "train/vision_lengths": 3,
        "test/regression_labels": 1,
    }
    assert "train/audio_lengths: 3 values outside their range were clipped" in caplog.text
    put(tmp_path, MOSI_FILE, mmsa_raw())
    assert "repairs" not in MOSI(tmp_path, verify=False, repair=True).load().provenance  # nothing to repair


def test_repair_must_be_a_boolean(tmp_path):
    with pytest.raises(DataError, match=r"--data-option repair=maybe: expected true or false"):
        MOSI(tmp_path, repair="maybe")


def test_mmsa_aligned_lengths_come_from_the_text_mask(tmp_path):
    raw = mmsa_raw(L=6, La=6, Lv=6, lengths=False)
    put(tmp_path, "MOSI/Processed/aligned_50.pkl", raw)
    data = MOSIAligned(tmp_path, verify=False).load()
    for name, split in data.splits.items():
        text = raw[name]["text_bert"][:, 1].sum(1).astype(int)
        assert split.tensors["text_lengths"].tolist() == text.tolist()
        assert split.tensors["audio_lengths"].tolist() == text.tolist()
        assert split.tensors["vision_lengths"].tolist() == text.tolist()


def test_mmsa_unaligned_sequences_without_lengths_are_refused(tmp_path):
    put(tmp_path, MOSI_FILE, mmsa_raw(L=6, La=6, Lv=4, lengths=False))
    with pytest.raises(
        DataError, match=r"train has no 'vision_lengths', and its vision \(4 steps\) is not aligned to the text tokens"
    ):
        MOSI(tmp_path, verify=False).load()


def test_mmsa_nonfinite_features_become_zero_and_are_counted(tmp_path, caplog):
    raw = mmsa_raw()
    raw["train"]["audio"][0, 0, 0] = -np.inf
    raw["train"]["audio"][2, 3, 4] = np.inf
    raw["train"]["vision"][1, 2, 3] = np.nan
    raw["test"]["audio"][3, 1, :2] = -np.inf
    original = raw["train"]["audio"].copy()
    put(tmp_path, MOSI_FILE, raw)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        data = MOSI(tmp_path, verify=False).load()
    assert data.provenance["nonfinite"] == {"train/audio": 2, "train/vision": 1, "test/audio": 2}
    train, test = data.splits["train"].tensors, data.splits["test"].tensors
    assert train["audio"][0, 0, 0].item() == 0 and train["audio"][2, 3, 4].item() == 0
    assert train["vision"][1, 2, 3].item() == 0
    assert test["audio"][3, 1, :2].tolist() == [0, 0]
    for tensor in (train["audio"], train["vision"], test["audio"]):
        assert torch.isfinite(tensor).all()
    finite = np.isfinite(original)
    np.testing.assert_array_equal(train["audio"].numpy()[finite], original[finite])
    messages = [r.getMessage() for r in caplog.records]
    assert any("train/audio had 2 non-finite values" in m for m in messages)
    assert any("test/audio had 2 non-finite values" in m for m in messages)


def test_mmsa_nan_labels_are_refused(tmp_path):
    raw = mmsa_raw()
    raw["valid"]["regression_labels"][1] = np.nan
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=r"valid/regression_labels holds NaN or infinite labels"):
        MOSI(tmp_path, verify=False).load()


def test_mmsa_wrong_feature_dim_is_refused(tmp_path):
    put(tmp_path, MOSI_FILE, mmsa_raw(dims=(768, 7, 20)))
    with pytest.raises(DataError, match=r"train/audio has feature dim 7; mosi has 5") as error:
        MOSI(tmp_path, verify=False).load()
    assert str(tmp_path / MOSI_FILE) in str(error.value)


def test_mmsa_missing_key_lists_what_the_split_has(tmp_path):
    raw = mmsa_raw()
    del raw["train"]["audio"]
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError) as error:
        MOSI(tmp_path, verify=False).load()
    message = str(error.value)
    assert "split 'train' lacks ['audio']" in message
    assert str(sorted(raw["train"])) in message
    assert "mosi" in message


@pytest.mark.parametrize("key", ["audio", "vision", "text", "text_bert", "regression_labels", "audio_lengths"])
def test_mmsa_sample_count_must_match_the_ids(tmp_path, key):
    raw = mmsa_raw()
    raw["test"][key] = raw["test"][key][:-1]
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=rf"test/{key} has shape \(3[,)].*with 4 samples \(one per id\)"):
        MOSI(tmp_path, verify=False).load()


def test_mmsa_valid_feature_dim_must_match_train():
    raw = mmsa_raw()
    raw["valid"]["audio"] = np.zeros((3, 8, 6), dtype=np.float32)
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    with pytest.raises(DataError, match=r"where: valid/audio has shape \(3, 8, 6\), but train/audio has \(5, 8, 5\)"):
        mmsa_data(
            raw,
            name="x",
            task=task,
            inputs=("text_bert", "audio"),
            labels=("label",),
            dims={},
            provenance={},
            where="where",
        )


def test_mmsa_valid_feature_dim_checked_against_the_dataset(tmp_path):
    raw = mmsa_raw()
    raw["valid"]["vision"] = np.zeros((3, 5, 21), dtype=np.float32)
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=r"valid/vision has feature dim 21; mosi has 20"):
        MOSI(tmp_path, verify=False).load()


def test_mmsa_text_bert_must_hold_integer_ids(tmp_path):
    raw = mmsa_raw()
    raw["train"]["text_bert"][0, 0, 1] = 101.5
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=r"train/text_bert must be \[N, 3, L\] integer ids"):
        MOSI(tmp_path, verify=False).load()


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ([1, 2, 3], "found list"),
        (np.zeros(3), "found ndarray"),
        ({"valid": {}, "test": {}}, "found ['test', 'valid']"),
    ],
)
def test_mmsa_wrong_top_level_is_refused(tmp_path, raw, found):
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match=r"expected a dict with 'train', 'valid' and 'test'") as error:
        MOSI(tmp_path, verify=False).load()
    assert found in str(error.value)


def test_mmsa_verify_is_the_default_and_refuses_an_unpublished_file(tmp_path):
    put(tmp_path, MOSI_FILE, mmsa_raw())
    with pytest.raises(DataError, match="--no-verify") as error:
        MOSI(tmp_path).load()
    assert MOSI_SHA in str(error.value)


def test_mmsa_missing_file(tmp_path):
    with pytest.raises(DataError) as error:
        MOSI(tmp_path, verify=False).load()
    assert str(tmp_path / MOSI_FILE) in str(error.value)
    assert "github.com/thuiar/MMSA" in str(error.value)


def test_mmsa_refuses_a_malicious_file(tmp_path):
    marker = tmp_path / "marker"
    raw = mmsa_raw()
    raw["train"]["annotations"] = RunsShell(marker)
    put(tmp_path, MOSI_FILE, raw)
    with pytest.raises(DataError, match="refused to load"):
        MOSI(tmp_path, verify=False).load()
    assert not marker.exists()


def test_mmsa_split_size_warning(tmp_path, caplog):
    put(tmp_path, MOSI_FILE, mmsa_raw())
    with caplog.at_level(logging.WARNING, logger="msabench"):
        MOSI(tmp_path, verify=False).load()
    sizes = [r.getMessage() for r in caplog.records if "split sizes" in r.getMessage()]
    assert len(sizes) == 1
    assert (
        "{'train': 5, 'valid': 3, 'test': 4} differ from the published {'train': 1284, 'valid': 229, 'test': 686}"
        in sizes[0]
    )

    class SmallMOSI(MOSI):
        sizes = {"train": 5, "valid": 3, "test": 4}

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="msabench"):
        SmallMOSI(tmp_path, verify=False).load()
    assert not [r for r in caplog.records if "split sizes" in r.getMessage()]


def test_sims_unimodal_labels(tmp_path):
    raw = mmsa_raw(dims=(768, 33, 709), unimodal=True, L=4, La=6, Lv=3, bound=1.0)
    put(tmp_path, "SIMS/Processed/unaligned_39.pkl", raw)
    data = SIMS(tmp_path, verify=False).load()
    assert data.task.family == "sims" and data.vocab_size == 21128
    for name, split in data.splits.items():
        t = split.tensors
        assert t["audio"].shape[2] == 33 and t["vision"].shape[2] == 709
        for ours, theirs in (("label", ""), ("label_T", "_T"), ("label_A", "_A"), ("label_V", "_V")):
            assert t[ours].dtype == torch.float32
            np.testing.assert_array_equal(t[ours].numpy(), raw[name][f"regression_labels{theirs}"])


def test_sims_requires_unimodal_labels(tmp_path):
    raw = mmsa_raw(dims=(768, 33, 709), unimodal=True, L=4, La=6, Lv=3, bound=1.0)
    del raw["test"]["regression_labels_V"]
    put(tmp_path, "SIMS/Processed/unaligned_39.pkl", raw)
    with pytest.raises(DataError, match=r"split 'test' lacks \['regression_labels_V'\]"):
        SIMS(tmp_path, verify=False).load()


def test_sims_wrong_dims_refused(tmp_path):
    put(tmp_path, "SIMS/Processed/unaligned_39.pkl", mmsa_raw(unimodal=True))  # MOSI's dims
    with pytest.raises(DataError, match=r"train/audio has feature dim 5; ch-sims has 33"):
        SIMS(tmp_path, verify=False).load()


def test_sims_v2_without_published_hash_loads_unverified(tmp_path):
    put(
        tmp_path,
        "SIMSv2/Processed/sims_unaligned.pkl",
        mmsa_raw(dims=(768, 25, 177), unimodal=True, L=4, La=6, Lv=3, bound=1.0),
    )
    data = SIMSv2(tmp_path).load()  # verify=True: nothing published to compare with
    assert data.provenance["verified"] is False
    assert set(data.splits["train"].tensors) >= {"label_T", "label_A", "label_V"}


# --- synthetic datasets ---------------------------------------------------------------------------

SYNTH_MOSI_FILE = "synthetic-mosi/Processed/unaligned.pkl"


@pytest.fixture(scope="module")
def mosi_pickled(tmp_path_factory) -> bytes:
    """One generation, as `msabench data synth` writes it."""
    return SyntheticMOSI(tmp_path_factory.mktemp("unused")).pickled()


@pytest.fixture(scope="module")
def mosi_generation(tmp_path_factory):
    """A second, independent generation through load() (no file under the data root), with the raw dict it loaded."""
    seen = []
    generate = SyntheticMOSI.generate
    with pytest.MonkeyPatch.context() as patch:
        # load() consumes what it is given (non-finite values are zeroed in place): keep a copy
        patch.setattr(SyntheticMOSI, "generate", lambda self: seen.append(generate(self)) or copy.deepcopy(seen[-1]))
        data = SyntheticMOSI(tmp_path_factory.mktemp("empty")).load()
    assert len(seen) == 1
    return data, seen[0]


@pytest.fixture(scope="module")
def mosi_generated(mosi_generation):
    return mosi_generation[0]


@pytest.fixture(scope="module")
def mosi_raw(mosi_generation):
    return mosi_generation[1]


@pytest.fixture(scope="module")
def sims_generated(tmp_path_factory):
    return SyntheticSIMS(tmp_path_factory.mktemp("empty")).load()


@pytest.fixture
def cached_pickled(monkeypatch, mosi_pickled):
    """SyntheticMOSI.pickled() answered from one real generation, so file tests stay fast."""
    monkeypatch.setattr(SyntheticMOSI, "pickled", lambda self: mosi_pickled)


def test_synthetic_generation_is_deterministic(mosi_pickled, mosi_raw):
    """Two generations (pickled(), and the one load() made and converted) give byte-identical pickles."""
    again = pickle.dumps(mosi_raw, protocol=4)
    assert len(again) == len(mosi_pickled)
    assert hashlib.sha256(again).digest() == hashlib.sha256(mosi_pickled).digest()


def test_synthetic_layout(mosi_raw):
    assert list(mosi_raw) == ["train", "valid", "test"]
    assert {split: len(part["id"]) for split, part in mosi_raw.items()} == {"train": 600, "valid": 150, "test": 150}
    train = mosi_raw["train"]
    assert train["text_bert"].shape == (600, 3, 24)
    assert train["text"].shape == (600, 24, 768)
    assert train["audio"].shape == (600, 40, 5)
    assert train["vision"].shape == (600, 30, 20)
    ids = np.concatenate([part["id"] for part in mosi_raw.values()])
    assert len(set(ids)) == 900


@pytest.mark.parametrize("which", ["mosi", "sims"])
def test_synthetic_labels_range_and_rounding(which, mosi_generated, sims_generated):
    data = mosi_generated if which == "mosi" else sims_generated
    bound = 3.0 if which == "mosi" else 1.0
    keys = ["label"] if which == "mosi" else ["label", "label_T", "label_A", "label_V"]
    for split in data.splits.values():
        for key in keys:
            labels = split.tensors[key].double().numpy()
            assert labels.min() >= -bound and labels.max() <= bound
            np.testing.assert_allclose(labels * 5, np.round(labels * 5), atol=1e-4)
            assert len(np.unique(labels)) > 5
    all_labels = np.concatenate([s.tensors["label"].numpy() for s in data.splits.values()])
    assert all_labels.min() == -bound and all_labels.max() == bound  # the clip is reached
    zeros = int((all_labels == 0).sum())
    assert 0 < zeros < len(all_labels) / 4
    assert not np.signbit(all_labels[all_labels == 0]).any()  # no -0.0


def text_polarity(ids: np.ndarray, mask: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """(positive - negative words) / words, from the vocabulary layout: specials, positive, negative, neutral."""
    first = len(SPECIALS)
    positive = ((ids >= first) & (ids < first + n_pos)).sum(1)
    negative = ((ids >= first + n_pos) & (ids < first + n_pos + n_neg)).sum(1)
    return (positive - negative) / (mask.sum(1) - 2)


def mean_frames(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return values.sum(1) / lengths[:, None]


def synthetic_features(tensors, words):
    bert = tensors["text_bert"].numpy()
    text = text_polarity(bert[:, 0], bert[:, 1], len(words["positive"]), len(words["negative"]))
    audio = mean_frames(tensors["audio"].double().numpy(), tensors["audio_lengths"].numpy())
    vision = mean_frames(tensors["vision"].double().numpy(), tensors["vision_lengths"].numpy())
    return text, audio, vision


def r_squared(features, y):
    design = np.column_stack([np.ones(len(y)), *features])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return 1 - np.mean((y - design @ beta) ** 2) / np.var(y), beta


def test_synthetic_mosi_planted_signal(mosi_generated):
    words = SyntheticMOSI.words
    train = mosi_generated.splits["train"].tensors
    text, audio, vision = synthetic_features(train, words)
    y = train["label"].double().numpy()
    r2, beta = r_squared([text, audio, vision], y)
    assert r2 > 0.3
    assert r_squared([text], y)[0] > 0.15  # every modality carries part of the answer
    assert r_squared([audio], y)[0] > 0.1
    assert r_squared([vision], y)[0] > 0.1
    assert np.corrcoef(text, y)[0, 1] > 0.4  # more positive words, higher label
    # The fit carries over to the test split (a planted signal, not overfitting).
    test = mosi_generated.splits["test"].tensors
    features = synthetic_features(test, words)
    y_test = test["label"].double().numpy()
    predicted = np.column_stack([np.ones(len(y_test)), *features]) @ beta
    assert 1 - np.mean((y_test - predicted) ** 2) / np.var(y_test) > 0.3


def first_component(x: np.ndarray) -> np.ndarray:
    """Projection on the leading principal direction (power iteration: cheap for 600 x 709)."""
    x = x - x.mean(0)
    direction = np.ones(x.shape[1]) / np.sqrt(x.shape[1])
    for _ in range(30):
        direction = x.T @ (x @ direction)
        direction /= np.linalg.norm(direction)
    return x @ direction


def test_synthetic_sims_unimodal_labels_follow_their_modality(sims_generated):
    train = sims_generated.splits["train"].tensors
    text, audio, vision = synthetic_features(train, SyntheticSIMS.words)
    cues = {"T": text, "A": first_component(audio), "V": first_component(vision)}
    for modality, cue in cues.items():
        for key in "TAV":
            r = abs(np.corrcoef(cue, train[f"label_{key}"].double().numpy())[0, 1])
            assert (r > 0.6) if key == modality else (r < 0.2), (modality, key, r)
        assert abs(np.corrcoef(cue, train["label"].double().numpy())[0, 1]) > 0.3


def test_synthetic_sims_layout(sims_generated):
    assert sims_generated.task.family == "sims"
    assert sims_generated.provenance["source"] == "generated"
    train = sims_generated.splits["train"].tensors
    assert train["audio"].shape == (600, 40, 33) and train["vision"].shape == (600, 20, 709)
    assert {k: len(s) for k, s in sims_generated.splits.items()} == {"train": 600, "valid": 150, "test": 150}
    assert sims_generated.vocab_size == len(SPECIALS) + sum(len(g) for g in SyntheticSIMS.words.values())
    assert int(train["text_bert"][:, 0].max()) < sims_generated.vocab_size


def test_synthetic_nonfinite_audio_zeroed_and_counted(mosi_raw, mosi_generated):
    expected = {}
    for split, part in mosi_raw.items():
        assert np.isnan(part["audio"]).sum() == 0
        count = int(np.isneginf(part["audio"]).sum())
        assert count > 0, split
        expected[f"{split}/audio"] = count
        assert torch.isfinite(mosi_generated.splits[split].tensors["audio"]).all()
        holes = np.isneginf(part["audio"])
        assert (mosi_generated.splits[split].tensors["audio"].numpy()[holes] == 0).all()
    assert mosi_generated.provenance["nonfinite"] == expected


def test_synthetic_generated_provenance(mosi_generated):
    provenance = mosi_generated.provenance
    assert provenance["source"] == "generated"
    assert provenance["verified"] is True and provenance["synthetic"] is True
    assert provenance["files"] == {}
    assert provenance["generator"] == "SyntheticMOSI v1"
    assert mosi_generated.synthetic is True
    assert provenance["sizes"] == {"train": 600, "valid": 150, "test": 150}


def test_synthetic_reads_the_file_under_the_data_root(tmp_path, mosi_pickled, mosi_generated, cached_pickled):
    path = tmp_path / SYNTH_MOSI_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(mosi_pickled)
    data = SyntheticMOSI(tmp_path).load()
    assert data.provenance["source"] == "file"
    assert data.provenance["verified"] is True
    assert data.provenance["files"] == {SYNTH_MOSI_FILE: hashlib.sha256(mosi_pickled).hexdigest()}
    for split in ("train", "test"):
        for key, value in mosi_generated.splits[split].tensors.items():
            assert torch.equal(data.splits[split].tensors[key], value), (split, key)


def tampered(mosi_pickled: bytes, mosi_raw) -> tuple[bytes, int]:
    needle = mosi_raw["train"]["vision"].tobytes()[:64]
    offset = mosi_pickled.find(needle)
    assert offset > 0 and mosi_pickled.count(needle) == 1
    changed = bytearray(mosi_pickled)
    changed[offset + 3] ^= 0x40  # the sign/exponent byte of train vision[0, 0, 0]
    return bytes(changed), offset


def test_synthetic_tampered_file_is_refused(tmp_path, mosi_pickled, mosi_raw, cached_pickled):
    changed, _ = tampered(mosi_pickled, mosi_raw)
    path = tmp_path / SYNTH_MOSI_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(changed)
    with pytest.raises(DataError, match="--no-verify") as error:
        SyntheticMOSI(tmp_path).load()
    assert hashlib.sha256(mosi_pickled).hexdigest() in str(error.value)


def test_synthetic_tampered_file_loads_unverified_when_opted_out(tmp_path, mosi_pickled, mosi_raw, cached_pickled):
    changed, _ = tampered(mosi_pickled, mosi_raw)
    path = tmp_path / SYNTH_MOSI_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(changed)
    data = SyntheticMOSI(tmp_path, verify=False).load()
    assert data.provenance["verified"] is False
    assert data.provenance["source"] == "file"
    assert data.provenance["files"][SYNTH_MOSI_FILE] == hashlib.sha256(changed).hexdigest()
    loaded = data.splits["train"].tensors["vision"]
    original = mosi_raw["train"]["vision"]
    assert loaded[0, 0, 0].item() != original[0, 0, 0]
    np.testing.assert_array_equal(loaded.numpy().reshape(-1)[1:], original.reshape(-1)[1:])


# --- forged numpy dtypes (flags altered so raw bytes would be read as object pointers) -------------


class _ForgedObjectDtype:
    def __reduce__(self):
        return (np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))


class _ForgedStructuredDtype:
    def __reduce__(self):
        return (np.dtype, ("V8", False, True), (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 0))


class _ArrayFromBytes:
    def __init__(self, dtype):
        self.dtype = dtype

    def __reduce__(self):
        from numpy._core.numeric import _frombuffer

        return (_frombuffer, (b"\x41" * 16, self.dtype, (2,), "C"))


@pytest.mark.parametrize(
    "dtype", [_ForgedObjectDtype(), _ForgedStructuredDtype()], ids=["object-flags", "structured-object-field"]
)
def test_read_pickle_refuses_a_dtype_with_forged_flags(tmp_path, dtype):
    path = tmp_path / "forged.pkl"
    path.write_bytes(pickle.dumps({"id": _ArrayFromBytes(dtype)}, protocol=4))
    with pytest.raises(DataError, match="refused a numpy dtype .* altered state.*nothing in it ran"):
        read_pickle(path)


def test_read_pickle_keeps_big_endian_and_object_arrays(tmp_path):
    arrays = {
        "be": np.arange(4, dtype=">f4"),
        "objects": np.array(["a", "bb"], dtype=object),
        "bytes": np.array([b"x"]),
    }
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        loaded, reference = read_pickle(path), pickle.loads(path.read_bytes())
        assert all(np.array_equal(loaded[k], v) and loaded[k].dtype == reference[k].dtype for k, v in arrays.items())


def test_read_pickle_refuses_codecs_encode_with_another_codec(tmp_path):
    import _codecs

    class Odd:
        def __reduce__(self):
            return (_codecs.encode, ("abc", "rot13"))

    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps(Odd(), protocol=2))
    with pytest.raises(DataError, match="refused _codecs.encode with encoding 'rot13'"):
        read_pickle(path)
