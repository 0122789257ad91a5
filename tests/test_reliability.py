"""Nothing lost, nothing unchecked: writes that never destroy what was there, outputs checked before data loads,
inputs checked when they load, results checked before they are ranked (issue 21's cases, on tiny data)."""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import msabench
import msabench.plugins
from fakes import TinyData, write_tweets
from msabench import Data, DataError, Request, RunResult, Split, Task
from msabench.errors import CatalogError, RequestError, RunError
from msabench.formats import decode_text, mmsa_data, read_samples
from msabench.results import protect
from msabench.runtime import load_torch, usable_threads
from msabench.store import Room, hold
from msabench.trials import check_client

FAKECLI = Path(__file__).parent / "fakecli.py"
ROW = "tiny-data/tiny/mmsa-1+max_epochs=2"


def run(results="results", **fields):
    fields = {"seeds": [1], "max_epochs": 2, "results": results, "progress": False, **fields}
    return msabench.run("tiny", "tiny-data", **fields)


# -- work is never lost -----------------------------------------------------------------------------


def test_the_resume_state_outlives_a_failed_final_write(fakes, tmp_path, monkeypatch, caplog):
    (whole,) = run("whole")
    real_save = RunResult.save

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunResult, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run()
    folder = tmp_path / "results" / ROW
    assert (folder / "seed-1.resume.pt").is_file() and not (folder / "seed-1.json").exists()
    monkeypatch.setattr(RunResult, "save", real_save)
    with caplog.at_level(logging.INFO, logger="msabench"):
        (resumed,) = run()
    assert "resumed after epoch 2" in caplog.text  # both epochs kept: nothing trained again
    assert resumed.metrics == whole.metrics and resumed.history == whole.history
    assert not (folder / "seed-1.resume.pt").exists()


def test_a_failed_overwrite_puts_the_previous_result_back(fakes, tmp_path, monkeypatch):
    run()
    path = tmp_path / "results" / ROW / "seed-1.json"
    before = path.read_bytes(), path.with_suffix(".pt").read_bytes()

    def broken(run, train=None):
        raise RuntimeError("the machine fell over")

    monkeypatch.setattr("msabench.train.validate", broken)
    with pytest.raises(RuntimeError, match="fell over"):
        run(overwrite=True)
    assert (path.read_bytes(), path.with_suffix(".pt").read_bytes()) == before
    assert not list(path.parent.glob("*.previous.*"))


def fakecli(cwd, *args, kill_at=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kill_at is not None:
        env["MSABENCH_TEST_KILL_AT_STEP"] = str(kill_at)
    return subprocess.run(
        [sys.executable, str(FAKECLI), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_a_kill_during_overwrite_loses_nothing_and_the_overwrite_resumes(tmp_path):
    command = ["run", "-m", "tiny", "-d", "tiny-data", "--seeds", "1", "--max-epochs", "3", "--no-progress"]
    assert fakecli(tmp_path, *command).returncode == 0
    path = tmp_path / "results" / "tiny-data" / "tiny" / "mmsa-1+max_epochs=3" / "seed-1.json"
    before = path.read_bytes()
    killed = fakecli(tmp_path, *command, "--overwrite", kill_at=4)  # 48 samples, batches of 16: epoch 2
    assert killed.returncode == -signal.SIGKILL
    assert not path.exists() and path.with_name("seed-1.previous.json").read_bytes() == before
    assert path.with_name("seed-1.resume.pt").is_file()
    again = fakecli(tmp_path, *command, "--overwrite")  # the same overwrite, continued
    assert again.returncode == 0, again.stderr
    assert "resumed after epoch 1" in again.stderr and not path.with_name("seed-1.previous.json").exists()
    assert RunResult.load(path).epochs == 3

    killed = fakecli(tmp_path, *command, "--overwrite", kill_at=4)
    assert killed.returncode == -signal.SIGKILL
    plain = fakecli(tmp_path, *command)  # no --overwrite: the previous result comes back, and is kept
    assert plain.returncode == 0 and "put back the previous result" in plain.stderr and "done already" in plain.stderr
    assert path.is_file() and not path.with_name("seed-1.previous.json").exists()


def test_a_second_process_on_the_same_seed_waits_then_skips(tmp_path):
    command = ["run", "-m", "tiny", "-d", "synthetic-mosi", "--seeds", "7", "--max-epochs", "20", "--patience", "20"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first, second = (
        subprocess.Popen([sys.executable, str(FAKECLI), *command], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    )
    outputs = [process.communicate()[1].decode() for process in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    assert sum("seed 7: best epoch" in output for output in outputs) == 1  # trained once
    assert sum("done already" in output for output in outputs) == 1  # the other found the result
    assert sum("is being trained by" in output for output in outputs) == 1
    assert not list((tmp_path / "results").rglob(".*.lock"))


def test_the_seed_lock_admits_one_holder_at_a_time(tmp_path):
    path = tmp_path / "seed-1.json"
    entered, order = threading.Event(), []

    def second():
        with hold(path):
            order.append("second")
            entered.set()

    with hold(path):
        worker = threading.Thread(target=second)
        worker.start()
        assert not entered.wait(0.3)  # it waits while the first holds the lock
        order.append("first")
    worker.join(10)
    assert order == ["first", "second"] and not (tmp_path / ".seed-1.json.lock").exists()


def test_outputs_that_cannot_be_written_are_refused_before_the_data_loads(fakes, tmp_path, monkeypatch):
    def never(self, *args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(TinyData, "load", never)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunError, match=r"cannot write to a-file .*pass a writable folder"):
        run(results="a-file")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 4096))
    with pytest.raises(RunError, match=r"results has only 4 KiB free; free some space or write elsewhere"):
        run()


def test_the_room_for_checkpoint_and_resume_state_is_checked_before_the_first_epoch(tmp_path, monkeypatch):
    model = torch.nn.Linear(1000, 1000)  # 4 MB of weights

    class Run:
        optimizer = torch.optim.Adam(model.parameters())

    Run.model = model
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 10 << 20))
    # weights 4.0 MB, three copies (checkpoint, resume state's weights and best weights), Adam's two moments 8.0 MB
    with pytest.raises(RunError, match=r"has 10 MiB free; this run's checkpoint and resume state need about 19 MiB"):
        Room(tmp_path, checkpoint=True).on_fit_start(Run)


def test_outputs_named_by_the_user_never_replace_results_checkpoints_or_resume_states(tmp_path):
    result = tmp_path / "seed-1.json"
    result.write_text('{"metrics": {}, "protocol": {}}')
    checkpoint = tmp_path / "weights.bin"
    torch.save({"model": {}}, checkpoint)
    (tmp_path / "seed-1.resume.pt").write_bytes(b"")
    (tmp_path / "renamed.json").write_text('{"dataset": "x", "metrics": {"MAE": 1}, "protocol": {"id": "mmsa-1"}}')
    for path, kind in [
        (result, "a run's result or resume state"),
        (tmp_path / "seed-1.resume.pt", "a run's result or resume state"),
        (checkpoint, "a torch checkpoint"),
        (tmp_path / "renamed.json", "a run's result"),
    ]:
        with pytest.raises(RunError, match=f"is {kind}: msabench does not overwrite it"):
            protect(path)
    protect(tmp_path / "predictions.txt")  # anything else may be written
    (tmp_path / "notes.txt").write_text("mine")
    protect(tmp_path / "notes.txt")


def test_a_run_into_other_results_never_replaces_the_page_of_the_default_folder(fakes, tmp_path, caplog):
    run("first")
    page = tmp_path / "leaderboards" / "tiny-data.md"
    first = page.read_text()
    with caplog.at_level(logging.WARNING, logger="msabench"):
        run("second", seeds=[2])
    assert page.read_text() == first and "rendered from other results than second" in caplog.text
    assert "| tiny " in (tmp_path / "second" / "tiny-data.md").read_text()
    run("first", seeds=[3])  # the folder the page came from: the page follows it
    assert "from 2 result files" in page.read_text()
    run("second", seeds=[4], leaderboards="leaderboards")  # named explicitly: written where asked
    assert "2 result files" in page.read_text()


# -- every value checked before training ------------------------------------------------------------


def test_threads_beyond_the_machines_cpus_are_capped_with_a_warning(caplog):
    cpus = len(os.sched_getaffinity(0))
    with caplog.at_level(logging.WARNING, logger="msabench"):
        assert usable_threads(cpus + 5) == cpus
    assert f"this machine has {cpus} CPUs; using {cpus}" in caplog.text
    assert usable_threads(None) == 1


def test_a_user_max_epochs_above_the_protocols_cap_is_refused(fakes):
    with pytest.raises(RequestError, match="train.max_epochs=150 is more than the protocol's cap of 100 epochs"):
        msabench.plan(Request("tiny", "tiny-data", sets={"train.max_epochs": 150}))
    assert msabench.plan(Request("tiny", "tiny-data", sets={"train.max_epochs": 150}, max_epochs=150))


def test_an_empty_or_hiding_msabench_load_plugins_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "")
    with pytest.raises(CatalogError, match=r"MSABENCH_LOAD_PLUGINS='' is set: it loads no plugins; unset it"):
        msabench.plan(Request("tfn", "synthetic-mosi"))


def test_ray_client_addresses_need_grpcio_and_say_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(CatalogError, match=r"Ray Client, which needs grpcio \(ray\[client\]\).*\[sweep\]"):
        check_client("ray://head:10001")
    check_client("auto")  # a cluster node needs no client
    check_client(None)


# -- every input checked when it loads --------------------------------------------------------------

TASK = Task("regression", "mosi", label_range=(-3.0, 3.0))


def data(**splits):
    return Data("toy", TASK, splits, provenance={})


def split(name, ids, **tensors):
    tensors.setdefault("label", torch.zeros(len(ids)))
    return Split(name, ids, tensors)


def test_a_loaded_dataset_is_checked_for_what_every_dataset_must_satisfy(caplog):
    ok = {"valid": split("valid", ["v1"]), "test": split("test", ["t1"])}
    with pytest.raises(DataError, match=r"toy, split 'train' is empty"):
        data(train=split("train", []), **ok).checked()
    with pytest.raises(DataError, match=r"toy, split 'train': id 'a' names rows 0 and 2"):
        data(train=split("train", ["a", "b", "a"]), **ok).checked()
    audio = torch.zeros(2, 4, 3)
    with pytest.raises(DataError, match=r"audio_lengths holds torch.float32 values; lengths are whole numbers"):
        data(train=split("train", ["a", "b"], audio=audio, audio_lengths=torch.tensor([1.5, 2.0])), **ok).checked()
    with pytest.raises(DataError, match=r"audio_lengths must lie in 1..4; it holds 0..5"):
        data(train=split("train", ["a", "b"], audio=audio, audio_lengths=torch.tensor([0, 5])), **ok).checked()
    with pytest.raises(DataError, match=r"vision holds complex numbers"):
        data(train=split("train", ["a"], vision=torch.zeros(1, 2, dtype=torch.complex64)), **ok).checked()
    with pytest.raises(DataError, match=r"text holds NaN or infinite values"):
        data(train=split("train", ["a"], text=torch.tensor([[float("nan")]])), **ok).checked()
    leaky = data(train=split("train", ["a", "t1"]), **ok)
    with caplog.at_level(logging.WARNING, logger="msabench"):
        leaky.checked()
    assert "splits share sample ids (train/test: 1)" in caplog.text
    assert leaky.provenance["shared_ids"] == {"train/test": {"count": 1, "examples": ["t1"]}}


def mmsa_part(n=3, **changes):
    part = {
        "id": np.array([f"s{i}" for i in range(n)]),
        "audio": np.zeros((n, 4, 2), dtype=np.float32),
        "audio_lengths": np.array([1, 2, 4]),
        "regression_labels": np.zeros(n, dtype=np.float32),
    }
    return {**part, **changes}


def read_mmsa(train):
    raw = {"train": train, "valid": mmsa_part(), "test": mmsa_part()}
    return mmsa_data(
        raw, name="toy", task=TASK, inputs=("audio",), labels=("label",), dims={}, provenance={}, where="toy.pkl"
    )


def test_the_mmsa_reader_refuses_complex_features_and_fractional_lengths_naming_the_row():
    with pytest.raises(DataError, match=r"toy.pkl: train/audio holds complex64 values; expected real numbers"):
        read_mmsa(mmsa_part(audio=np.zeros((3, 4, 2), dtype=np.complex64)))
    with pytest.raises(DataError, match=r"train/audio_lengths of row 1 \(id s1\) is 2.5; expected a whole number"):
        read_mmsa(mmsa_part(audio_lengths=np.array([1.0, 2.5, 3.0])))
    with pytest.raises(DataError, match=r"train/audio holds <U1 values"):
        read_mmsa(mmsa_part(audio=np.full((3, 4, 2), "x")))
    assert len(read_mmsa(mmsa_part(audio_lengths=np.array([1.0, 2.0, 4.0]))).splits["train"]) == 3


@pytest.mark.parametrize(
    ("text", "encoding", "how"),
    [
        ("今日はとても良い天気ですね。公園に行きましょう！", "shift_jis", "shift_jis"),
        ("ありがとう", "shift_jis", "shift_jis"),
        ("Привет, как дела? Это отличный день для прогулки.", "koi8-r", "koi8-r"),
        ("Спасибо!", "koi8-r", "koi8-r"),
        ("Привет, как дела? Отличный день.", "cp1251", "cp1251"),
        ("今天天气很好，我们去公园散步吧！", "gb18030", "gb18030"),
        ("RT “so happy” — café", "gb18030", "gb18030"),  # English with GBK quotes, as in Lab5
        ("Café naïve — déjà vu, très bien!", "cp1252", "cp1252"),
    ],
)
def test_texts_in_other_encodings_are_read_as_written(text, encoding, how):
    assert decode_text(text.encode(encoding)) == (text, how)


def test_any_bytes_decode_without_an_error():
    rng = np.random.default_rng(0)
    for _ in range(200):
        text, how = decode_text(rng.integers(0, 256, size=int(rng.integers(1, 40)), dtype=np.uint8).tobytes())
        assert isinstance(text, str) and how


def lab5_folder(tmp_path, lines: bytes):
    folder = tmp_path / "lab5"
    (folder / "data").mkdir(parents=True)
    (folder / "train.txt").write_bytes(b"guid,tag\n" + lines)
    (folder / "test_without_label.txt").write_bytes(b"guid,tag\n")
    return folder


def test_an_index_line_that_is_not_utf8_is_one_error_naming_file_and_line(tmp_path):
    from msabench_lab5.data import Lab5

    folder = lab5_folder(tmp_path, b"1,positive\n2,neg\xe9ative\n")
    with pytest.raises(DataError, match=r"train.txt:3: not UTF-8 text \(byte 0xe9 at column 6\)"):
        Lab5(folder, verify=False).labelled()


@pytest.mark.parametrize("guid", ["../../secret", "/etc/passwd", "..\\\\x", ".hidden", "a/b"])
def test_an_id_that_would_read_outside_the_data_folder_is_refused(tmp_path, guid):
    from msabench_lab5.data import Lab5

    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    folder = lab5_folder(tmp_path, f"1,positive\n{guid},negative\n".encode())
    with pytest.raises(DataError, match=r"train.txt:3: id .* is not a plain file name"):
        Lab5(folder, verify=False).labelled()
    with pytest.raises(DataError, match=r"is not a plain file name"):
        read_samples(folder, [guid], [0], where="test")


def test_an_mvsa_index_id_that_would_read_outside_the_data_folder_is_refused(tmp_path):
    from fakes import FolderTweets

    folder = write_tweets(tmp_path / "tweets", n=6)
    index = folder / "labelResultAll.txt"
    index.write_text(index.read_text() + "../../secret\tpositive,positive\n")
    with pytest.raises(DataError, match=r"labelResultAll.txt:8: id '../../secret' is not a plain file name"):
        FolderTweets(folder).load()


# -- every result checked before it is used ---------------------------------------------------------


class Anything:
    """Not a tensor or a plain container: a weights-only load refuses it."""


def test_a_tampered_result_is_listed_and_never_ranked(fakes, tmp_path, caplog):
    run(seeds=[1, 2])
    path = tmp_path / "results" / ROW / "seed-2.json"
    stored = json.loads(path.read_text())
    stored["metrics"]["Acc-2_has0"] = 7.3  # would be the best row, in bold
    path.write_text(json.dumps(stored))
    with caplog.at_level(logging.WARNING, logger="msabench"):
        pages = msabench.render_leaderboards("results", "boards", charts=False)
        rows = msabench.load_results("results")
    assert f"skipped {path.relative_to(tmp_path)}" in caplog.text.replace(str(tmp_path) + "/", "")
    assert "metrics.Acc-2_has0: 7.3 is out of range" in caplog.text
    assert "from 1 result files" in pages["tiny-data"] and "730.00" not in pages["tiny-data"]
    assert list(rows["seed"]) == [1]


def test_a_garbage_checkpoint_is_one_line_without_torchs_advice(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError) as refused:
        load_torch(garbage)
    assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)

    buffer = io.BytesIO()
    torch.save({"model": Anything()}, buffer)
    unsafe = tmp_path / "unsafe.pt"
    unsafe.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="holds objects other than tensors and plain containers") as refused:
        load_torch(unsafe)
    assert "weights_only" not in str(refused.value)
    with pytest.raises(DataError, match=r"cannot read checkpoint .*seed-1.pt: .*; rerun the method to get it"):
        (tmp_path / "seed-1.json").write_text("{}")
        (tmp_path / "seed-1.pt").write_bytes(pickle.dumps({"model": 1}))
        from msabench.inference import load_run

        load_run(tmp_path / "seed-1.json")
