"""Run results (DESIGN.md section 6): the JSON round trip, atomic writes, and where result files live."""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path

import pytest

from msabench.errors import DataError
from msabench.results import SCHEMA, RunResult, load_results, result_path, resume_path, write_atomic


def make_result(dataset="mosi", method="tfn", seed=1111, variant="", corr=0.71) -> RunResult:
    return RunResult(
        dataset=dataset,
        method=method,
        seed=seed,
        metrics={"Acc-2_has0": 0.75, "MAE": 0.9, "Corr": corr},
        protocol={"id": "mmsa-v1", "seeds": [1111, 1112], "patience": 8},
        task={"kind": "regression", "family": "mosi"},
        variant=variant,
        valid_metrics={"loss": 0.8, "Corr": math.nan},
        best_epoch=3,
        epochs=11,
        history=[{"epoch": 1, "train": {"total": 1.5, "l1": 1.5}, "valid": {"loss": 1.2}}],
        predictions={"ids": ["a$_$0", "b$_$1"], "predictions": [0.25, -1.5], "labels": [0.4, -1.2]},
        hparams={"train": {"lr": 1e-3, "batch_size": 32}, "fusion": {"hidden": 128}},
        method_info={"paper": "Zadeh et al. 2017", "plugin": "msabench-baselines"},
        versions={"msabench": "0.1.0", "python": "3.11.7"},
        hardware={"device": "cpu", "threads": 2},
        data={"files": {"MOSI/Processed/unaligned_50.pkl": "ab" * 32}, "verified": False, "synthetic": False},
        wall_time_s=12.5,
        peak_memory_mb={"cpu": 512.0},
    )


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# --- RunResult ------------------------------------------------------------------------------------


def test_round_trip_with_nan_metrics(tmp_path):
    original = make_result(corr=math.nan)
    path = original.save(tmp_path / "r.json")
    assert path == tmp_path / "r.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    stored = strict_json(text)
    assert stored["metrics"] == {"Acc-2_has0": 0.75, "MAE": 0.9, "Corr": None}
    assert stored["valid_metrics"] == {"loss": 0.8, "Corr": None}
    assert stored["schema"] == SCHEMA

    loaded = RunResult.load(path)
    assert math.isnan(loaded.metrics["Corr"]) and math.isnan(loaded.valid_metrics["Corr"])
    assert list(loaded.metrics) == ["Acc-2_has0", "MAE", "Corr"]
    assert loaded.metrics["MAE"] == 0.9 and loaded.valid_metrics["loss"] == 0.8
    assert loaded.to_dict() == original.to_dict()
    for name in (
        "dataset",
        "method",
        "seed",
        "protocol",
        "task",
        "variant",
        "best_epoch",
        "epochs",
        "history",
        "predictions",
        "hparams",
        "method_info",
        "versions",
        "hardware",
        "data",
        "wall_time_s",
        "peak_memory_mb",
        "schema",
    ):
        assert getattr(loaded, name) == getattr(original, name), name


def test_round_trip_without_nan_is_equal(tmp_path):
    original = make_result(variant="text=bert")
    original.valid_metrics = {"loss": 0.8, "Corr": 0.5}
    loaded = RunResult.load(original.save(tmp_path / "r.json"))
    assert loaded == original
    assert loaded.row == "tfn [text=bert]"
    assert make_result().row == "tfn"


def test_infinite_metrics_are_stored_as_null(tmp_path):
    original = make_result()
    original.metrics["MAE"] = math.inf
    stored = strict_json(original.save(tmp_path / "r.json").read_text())
    assert stored["metrics"]["MAE"] is None


def test_from_dict_unknown_key(tmp_path):
    data = make_result().to_dict()
    data["brand_new_field"] = 1
    with pytest.raises(DataError, match=r"unknown keys \['brand_new_field'\]"):
        RunResult.from_dict(data)


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"dataset": "mosi"', b"\xff\xfe\x00garbage", b"null", b"3"],
    ids=["empty", "syntax", "truncated", "binary", "null", "number"],
)
def test_corrupt_file_is_a_data_error_naming_the_path(tmp_path, content):
    path = tmp_path / "mosi" / "tfn" / "seed-1111.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        RunResult.load(path)
    assert str(path) in str(error.value)


def test_missing_required_key_is_a_data_error_naming_the_path(tmp_path):
    data = make_result().to_dict()
    del data["metrics"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="cannot read result file") as error:
        RunResult.load(path)
    assert str(path) in str(error.value)


def test_missing_file_is_a_data_error_naming_the_path(tmp_path):
    with pytest.raises(DataError, match="cannot read result file") as error:
        RunResult.load(tmp_path / "nope.json")
    assert str(tmp_path / "nope.json") in str(error.value)


@pytest.mark.parametrize("content", ["unknown-field", "top-level-list"])
def test_unknown_key_in_a_file_names_the_path(tmp_path, content):
    data = make_result().to_dict()
    data["brand_new_field"] = 1
    if content == "top-level-list":
        data = [1, 2]
    path = tmp_path / "mosi" / "tfn" / "seed-1111.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as error:
        RunResult.load(path)
    assert str(path) in str(error.value)


def test_wrongly_typed_metrics_are_a_data_error(tmp_path):
    data = make_result().to_dict()
    data["metrics"] = None
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as error:
        RunResult.load(path)
    assert str(path) in str(error.value)


# --- write_atomic ---------------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_atomic_creates_parents_and_writes_text_and_bytes(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    write_atomic(target, "héllo ✓")
    assert target.read_bytes() == "héllo ✓".encode()
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert leftovers(target.parent) == ["c.txt"]


def test_write_atomic_replaces_an_existing_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old contents that are longer than the new ones")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert leftovers(tmp_path) == ["r.json"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_write_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, step, error):
    target = tmp_path / "r.json"
    target.write_text("old")
    calls = []

    def fail(*args, **kwargs):
        calls.append(args)
        raise error

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(type(error)):
        write_atomic(target, "new " * 1000)
    monkeypatch.undo()
    assert calls  # the failure really happened midway
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == ["r.json"]


def test_write_atomic_failure_on_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError, match="no"):
        write_atomic(tmp_path / "sub" / "r.json", "x")
    monkeypatch.undo()
    assert leftovers(tmp_path / "sub") == []


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_atomic_mode_follows_the_umask(tmp_path):
    """Under the process's umask (022 here: 0o644), not mkstemp's private 0o600."""
    mask = current_umask()
    target = tmp_path / "r.json"
    write_atomic(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    if mask == 0o022:
        assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_atomic_mode_follows_a_umask_set_after_import(tmp_path):
    mask = 0o077 if current_umask() != 0o077 else 0o027
    previous = os.umask(mask)
    try:
        write_atomic(tmp_path / "r.json", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o666 & ~mask


def test_write_atomic_replacing_keeps_a_normal_mode(tmp_path):
    target = tmp_path / "r.json"
    write_atomic(target, "1")
    write_atomic(target, "2")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()


# --- result_path and load_results -----------------------------------------------------------------


def test_result_path_layout(tmp_path):
    assert result_path(tmp_path, "mosi", "tfn", 1111, protocol="mmsa-1") == tmp_path / "mosi/tfn/mmsa-1/seed-1111.json"
    shorter = result_path("results", "ch-sims", "lf-dnn", 1115, protocol="mmsa-1+max_epochs=1")
    assert shorter == Path("results/ch-sims/lf-dnn/mmsa-1+max_epochs=1/seed-1115.json")
    assert resume_path(shorter) == Path("results/ch-sims/lf-dnn/mmsa-1+max_epochs=1/seed-1115.resume.pt")


@pytest.mark.parametrize(
    ("variant", "folder"),
    [
        ("text=bert-base", "tfn+text=bert-base"),
        ("text=bert-base lr=1e-4", "tfn+text=bert-base_lr=1e-4"),
        ("lr=0.001,dropout=0.2", "tfn+lr=0.001,dropout=0.2"),
        ("  objective=msr / weights  ", "tfn+objective=msr_weights"),
        ("../../etc", "tfn+.._.._etc"),
        ("ünïcode:x", "tfn+n_code_x"),
    ],
)
def test_result_path_variant_slug(tmp_path, variant, folder):
    path = result_path(tmp_path, "mosi", "tfn", 1112, variant, protocol="mmsa-1")
    if folder != f"tfn+{variant}":  # characters were replaced: a hash of the variant keeps folders apart
        folder += "-" + hashlib.sha256(variant.encode()).hexdigest()[:12]
    assert path == tmp_path / "mosi" / folder / "mmsa-1" / "seed-1112.json"
    assert path.resolve().parent.parent.parent == (tmp_path / "mosi").resolve()


def test_load_results_recursive_sorted(tmp_path):
    written = [
        ("sims", "tfn", 1111, ""),
        ("mosi", "tfn", 1112, ""),
        ("mosi", "lmf", 1111, "lr=0.1"),
        ("mosi", "tfn", 1111, ""),
        ("mosi", "lf-dnn", 1113, ""),
    ]
    for dataset, method, seed, variant in written:
        make_result(dataset, method, seed, variant).save(
            result_path(tmp_path, dataset, method, seed, variant, protocol="mmsa-1")
        )
    # not results: other names, a temp file left by a killed writer
    (tmp_path / "mosi" / "tfn" / "mmsa-1" / "notes.json").write_text("{")
    (tmp_path / "mosi" / "tfn" / "mmsa-1" / ".seed-1113.json.abc123.tmp").write_text("{")
    (tmp_path / "mosi" / "tfn" / "mmsa-1" / "seed-1111.pt").write_bytes(b"\x00")

    results = load_results(tmp_path)
    assert [(r.dataset, r.method, r.seed, r.variant) for r in results] == [
        ("mosi", "lf-dnn", 1113, ""),
        ("mosi", "lmf", 1111, "lr=0.1"),
        ("mosi", "tfn", 1111, ""),
        ("mosi", "tfn", 1112, ""),
        ("sims", "tfn", 1111, ""),
    ]
    assert all(isinstance(r, RunResult) for r in results)


def test_load_results_empty_and_missing_root(tmp_path):
    assert load_results(tmp_path) == []
    assert load_results(tmp_path / "does-not-exist") == []


def test_load_results_reports_the_broken_file(tmp_path):
    make_result().save(result_path(tmp_path, "mosi", "tfn", 1111, protocol="mmsa-1"))
    broken = result_path(tmp_path, "mosi", "tfn", 1112, protocol="mmsa-1")
    broken.write_text('{"dataset": ')
    with pytest.raises(DataError) as error:
        load_results(tmp_path)
    assert str(broken) in str(error.value)
