"""read_pickle(lazy=True): big arrays stay in the file until read, with every guarantee of the eager reader."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest

from msabench.errors import DataError
from msabench.mmsa import zero_nonfinite
from msabench.pickles import DiskArray, read_pickle
from msabench_core.mmsa import MOSI
from test_data import RunsShell, WritesFile, _ForgedObjectDtype, _ForgedStructuredDtype

BIG = (300, 1000)  # 2.4 MB as float64: above the 1 MiB threshold


def dump(tmp_path, obj, protocol=4, name="file.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def sample():
    rng = np.random.default_rng(0)
    blob = bytes(rng.integers(0, 256, 2 << 20, dtype=np.uint8))
    return {
        "train": {
            "audio": rng.normal(size=BIG),
            "text": rng.normal(size=(40, 50, 200)).astype(np.float32),
            "fortran": np.asfortranarray(rng.normal(size=BIG)),
            "big_endian": np.arange(400_000, dtype=">f4"),
            "ints": np.arange(300_000, dtype=np.int64),
            "flags": rng.integers(0, 2, 2_000_000).astype(bool),
            "small": np.arange(5, dtype=np.float32),
            "id": np.array([f"clip{i}" for i in range(300)], dtype=object),
        },
        "bytes": blob,
        "in_a_tuple": (blob, 1),
        "in_a_set": {blob},
        "as_a_key": {blob: 1},
        "ordered": collections.OrderedDict([("b", blob)]),
    }


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_lazy_loading_gives_what_eager_loading_gives(tmp_path, protocol):
    obj = sample()
    path = dump(tmp_path, obj, protocol)
    lazy, eager = read_pickle(path, lazy=True), read_pickle(path)
    for key, value in obj["train"].items():
        loaded = lazy["train"][key]
        if protocol >= 3 and value.nbytes >= 1 << 20:
            assert isinstance(loaded, DiskArray), key  # protocols 0-2 store bytes as text: read as usual
            assert (loaded.shape, len(loaded)) == (value.shape, len(value))
            assert loaded.dtype == eager["train"][key].dtype  # numpy's unpickling swaps to native order
        array = np.asarray(loaded)
        assert array.dtype == eager["train"][key].dtype and array.shape == value.shape, key
        np.testing.assert_array_equal(array, value)
        np.testing.assert_array_equal(array, eager["train"][key])
    for key in ("bytes", "in_a_tuple", "in_a_set", "as_a_key", "ordered"):
        assert lazy[key] == obj[key] and type(lazy[key]) is type(obj[key]), key


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_disk_arrays_are_read_straight_into_another_dtype(tmp_path, protocol):
    obj = sample()["train"]
    loaded = read_pickle(dump(tmp_path, obj, protocol), lazy=True)
    for key in ("audio", "fortran", "big_endian"):
        array = loaded[key].read(np.float32)
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, obj[key].astype(np.float32))
    assert loaded["fortran"].read().flags.f_contiguous


def test_a_disk_array_reads_its_file_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(DiskArray, "CHUNK", 4096 + 8)  # not a multiple of the row size
    obj = sample()["train"]
    loaded = read_pickle(dump(tmp_path, obj), lazy=True)
    np.testing.assert_array_equal(loaded["audio"].read(np.float32), obj["audio"].astype(np.float32))
    np.testing.assert_array_equal(loaded["text"].read(), obj["text"])


@pytest.mark.parametrize("protocol", [3, 4, 5])
@pytest.mark.parametrize("payload", [RunsShell, WritesFile])
def test_malicious_pickle_after_big_arrays_is_refused_and_nothing_runs(tmp_path, payload, protocol):
    marker = tmp_path / "marker"
    obj = {"train": {"audio": np.zeros(BIG), "text": np.ones(BIG)}, "x": payload(marker)}
    with pytest.raises(DataError, match="refused to load.*nothing in it ran"):
        read_pickle(dump(tmp_path, obj, protocol), lazy=True)
    assert not marker.exists()


class _BigArrayFromBytes:
    def __init__(self, dtype):
        self.dtype = dtype

    def __reduce__(self):
        from numpy._core.numeric import _frombuffer

        return (_frombuffer, (b"\x41" * (2 << 20), self.dtype, (1 << 18,), "C"))


@pytest.mark.parametrize(
    "dtype", [_ForgedObjectDtype(), _ForgedStructuredDtype()], ids=["object-flags", "structured-object-field"]
)
def test_a_forged_dtype_over_a_big_payload_is_refused(tmp_path, dtype):
    path = dump(tmp_path, {"id": _BigArrayFromBytes(dtype)})
    with pytest.raises(DataError, match="refused a numpy dtype .* altered state.*nothing in it ran"):
        read_pickle(path, lazy=True)


class _MisshapenArray:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (301, 1000), np.dtype("f8"), False, bytes(2_400_000)))


def test_a_payload_that_does_not_match_its_shape_is_a_data_error(tmp_path):
    path = dump(tmp_path, {"audio": _MisshapenArray()})
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_pickle(path)
    with pytest.raises(DataError, match="truncated or corrupt.*does not hold 2400000 bytes"):
        read_pickle(path, lazy=True)


def test_truncated_big_pickles_are_data_errors(tmp_path):
    stream = pickle.dumps({"train": {"audio": np.zeros(BIG), "id": ["a", "b"]}}, protocol=4)
    for cut in (0, 40, 200, len(stream) // 2, len(stream) - 30, len(stream) - 1):
        path = tmp_path / f"cut-{cut}.pkl"
        path.write_bytes(stream[:cut])
        with pytest.raises(DataError, match="truncated or corrupt.*download it again"):
            read_pickle(path, lazy=True)


def test_a_file_cut_short_after_loading_is_a_data_error_when_read(tmp_path):
    path = dump(tmp_path, {"audio": np.zeros(BIG), "more": np.ones(BIG)})
    loaded = read_pickle(path, lazy=True)
    path.write_bytes(path.read_bytes()[: loaded["more"].offset + 100])
    np.testing.assert_array_equal(loaded["audio"].read(), np.zeros(BIG))
    with pytest.raises(DataError, match="truncated or changed since it was opened"):
        loaded["more"].read()


def test_zero_nonfinite_counts_and_zeroes_in_chunks():
    values = np.arange(100, dtype=np.float32).reshape(4, 25)
    values[1, 3], values[3, 24], values[0, 0] = -np.inf, np.nan, np.inf
    fortran = np.asfortranarray(values)
    strided = values.copy()[:, ::2]
    for array, bad in ((values.copy(), 3), (fortran, 3), (strided, 2)):
        expected = np.where(np.isfinite(array), array, 0)
        out, count = zero_nonfinite(array, chunk=7)
        assert count == bad and out is array
        np.testing.assert_array_equal(out, expected)
    frozen = values.copy()
    frozen.flags.writeable = False
    out, count = zero_nonfinite(frozen, chunk=7)
    assert count == 3 and out is not frozen and not np.isfinite(frozen).all()
    assert np.isfinite(out).all()


def mosi_shaped(n=40, steps=(50, 375, 500)):
    rng = np.random.default_rng(1)
    split = {
        "id": np.array([f"v{i}" for i in range(n)], dtype=object),
        "text": rng.normal(size=(n, steps[0], 768)).astype(np.float32),
        "text_bert": np.stack([np.ones((n, 50)), np.ones((n, 50)), np.zeros((n, 50))], axis=1),
        "audio": rng.normal(size=(n, steps[1], 5)),
        "vision": rng.normal(size=(n, steps[2], 20)),
        "audio_lengths": [int(x) for x in rng.integers(1, steps[1], n)],
        "vision_lengths": [int(x) for x in rng.integers(1, steps[2], n)],
        "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
    }
    split["vision"][0, 0, 0] = -np.inf
    return {
        name: {k: (v.copy() if hasattr(v, "copy") else v) for k, v in split.items()}
        for name in ("train", "valid", "test")
    }


def test_mmsa_datasets_read_only_the_inputs_asked_for_straight_into_float32(tmp_path, monkeypatch):
    raw = mosi_shaped()
    path = tmp_path / "MOSI" / "Processed" / "unaligned_50.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(raw, protocol=4))
    reads = []
    original = DiskArray.read
    monkeypatch.setattr(
        DiskArray, "read", lambda self, dtype=None: reads.append((self.shape, dtype)) or original(self, dtype)
    )
    data = MOSI(tmp_path, verify=False).load(inputs=("text", "vision"))
    train = data.splits["train"].tensors
    assert sorted(train) == ["label", "text", "text_lengths", "vision", "vision_lengths"]
    assert (40, 375, 5) not in [shape for shape, _ in reads]  # audio: never read
    assert ((40, 500, 20), np.float32) in reads  # vision: float64 on disk, read as float32 at once
    expected = raw["train"]["vision"].astype(np.float32)
    expected[0, 0, 0] = 0
    np.testing.assert_array_equal(train["vision"].numpy(), expected)
    np.testing.assert_array_equal(train["text"].numpy(), raw["train"]["text"])
    assert data.provenance["nonfinite"] == {"train/vision": 1, "valid/vision": 1, "test/vision": 1}
    everything = MOSI(tmp_path, verify=False).load()
    assert sorted(everything.splits["train"].tensors) == sorted(
        ["audio", "audio_lengths", "label", "text", "text_bert", "text_lengths", "vision", "vision_lengths"]
    )


def test_msabench_run_reads_only_the_inputs_its_encoders_take(tmp_path, monkeypatch):
    import msabench_core
    from fakes import Plugin
    from msabench import Catalog, Method, get_plugin_manager, hookimpl
    from msabench.api import Request, plan

    class TextAndVision:
        @hookimpl
        def register_methods(self, register):
            encoders = {"text": "mean-linear", "vision": "mean-linear"}
            register(Method("text-vision", "test", encoders, "fake-concat", "l1"))

    pm = get_plugin_manager(load_entrypoints=False)
    for plugin, name in ((msabench_core, "core"), (Plugin(), "fakes"), (TextAndVision(), "extra")):
        pm.register(plugin, name=name)
    catalog = Catalog.from_plugins(pm)
    path = tmp_path / "MOSI" / "Processed" / "unaligned_50.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(mosi_shaped(), protocol=4))
    reads = []
    original = DiskArray.read
    monkeypatch.setattr(DiskArray, "read", lambda self, dtype=None: reads.append(self.shape) or original(self, dtype))
    data = plan(Request("text-vision", "mosi", data_root=str(tmp_path), verify=False), catalog=catalog).load()
    assert {"text", "vision"} <= set(data.splits["train"].tensors)
    assert "audio" not in data.splits["train"].tensors
    assert (40, 375, 5) not in reads and (40, 500, 20) in reads  # audio left in the file, vision read
