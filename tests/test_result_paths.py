"""Result paths: valid file names however many hyper-parameters a run overrides, one folder per protocol,
temporary files that never outlive their writer, and what makes an existing result a different run."""

import os
import signal
import subprocess
import sys

from msabench.results import RunResult, differences, remove_stale_temporaries, result_path, temporary_path, write_atomic


def row_folder(path):
    return path.parent.parent


def test_long_variants_are_cut_with_a_hash_and_stay_distinct(tmp_path):
    long = ", ".join(f"text.option_{i}={i}" for i in range(40))
    path = result_path(tmp_path, "ch-sims", "dmmsa", 1111, long, protocol="mmsa-1")
    assert len(row_folder(path).name) <= 128 and row_folder(path).name.startswith("dmmsa+text.option_0=0")
    path.parent.mkdir(parents=True)  # a valid folder name (255 bytes at most on common file systems)
    other = result_path(tmp_path, "ch-sims", "dmmsa", 1111, long + ", x=1", protocol="mmsa-1")
    assert row_folder(other) != row_folder(path)
    plain = result_path(tmp_path, "ch-sims", "dmmsa", 1111, "train.lr=0.001", protocol="mmsa-1")
    assert row_folder(plain).name == "dmmsa+train.lr=0.001"


def test_variants_that_slug_alike_get_different_folders(tmp_path):
    spaced = result_path(tmp_path, "mosi", "tfn", 1, 'fusion.x="a b"', protocol="mmsa-1")
    underscored = result_path(tmp_path, "mosi", "tfn", 1, 'fusion.x="a_b"', protocol="mmsa-1")
    assert row_folder(spaced) != row_folder(underscored)
    assert row_folder(spaced).name.startswith("tfn+fusion.x=_a_b-")


def test_each_protocol_has_its_own_folder(tmp_path):
    full = result_path(tmp_path, "mosi", "tfn", 1111, protocol="mmsa-1")
    short = result_path(tmp_path, "mosi", "tfn", 1111, protocol="mmsa-1+max_epochs=1")
    assert full.parent.name == "mmsa-1" and short.parent.name == "mmsa-1+max_epochs=1"
    assert row_folder(full) == row_folder(short) and full != short


def test_a_killed_writer_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "seed-1.pt"
    script = (
        "import os, signal, sys\n"
        "from msabench.results import temporary_path\n"
        "path = temporary_path(sys.argv[1]); path.write_bytes(b'half'); print(path, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    leftover = tmp_path / os.path.basename(killed.stdout.strip())
    assert leftover.is_file() and leftover.name.startswith(".seed-1.pt.") and leftover.name.endswith(".tmp")
    mine = temporary_path(target)
    mine.write_bytes(b"in progress")  # this process is alive: its temporary stays
    write_atomic(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not leftover.exists() and mine.exists()
    assert remove_stale_temporaries(tmp_path) == []


def test_a_temporary_folder_of_a_dead_writer_is_removed(tmp_path):
    folder = tmp_path / "entry"
    script = "import sys; from msabench.results import temporary_path; print(temporary_path(sys.argv[1]))"
    name = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True).stdout.strip()
    (tmp_path / os.path.basename(name)).mkdir()
    (tmp_path / os.path.basename(name) / "part.arrow").write_bytes(b"x")
    assert [p.name for p in remove_stale_temporaries(folder)] == [os.path.basename(name)]
    assert list(tmp_path.iterdir()) == []


def result(**changes):
    base = RunResult(
        dataset="mosi",
        method="tfn",
        seed=1,
        metrics={},
        protocol={"id": "mmsa-1", "patience": 8},
        task={},
        hparams={"train": {"lr": 0.001, "batch_size": 32}, "fusion": {"dropout": 0.2}},
        data={"files": {"MOSI/a.pkl": "abc"}, "split": None, "verified": True},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_differences_name_what_changed():
    existing = result()
    same = differences(existing, data=dict(existing.data), hparams=existing.hparams, protocol=existing.protocol)
    assert same == []
    changed = differences(
        existing,
        data={"files": {"MOSI/a.pkl": "def"}, "split": None, "verified": False},
        hparams={"train": {"lr": 0.01, "batch_size": 32}, "fusion": {"dropout": 0.2}},
        protocol={"id": "mmsa-1+patience=3", "patience": 3},
    )
    assert changed == [
        'data files: {"MOSI/a.pkl": "abc"} then, {"MOSI/a.pkl": "def"} now',
        "hyper-parameter train.lr: 0.001 then, 0.01 now",
        "protocol: mmsa-1 then, mmsa-1+patience=3 now",
    ]
