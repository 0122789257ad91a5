"""`msabench reproduce`: lines expanded into units (shared stage runs once, finals after their stages), local worker
processes with the numbers of sequential runs, a crashed unit that fails alone, absent data skipped, a killed driver
resumed, and a two-node Ray layout on this machine. On the host's fakes (`fakes`, `fakeunits`), which the workers
import through their path."""

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import fakeunits
from fakes import Plugin
from msabench import RunResult
from msabench.api import Request, execute, plan
from msabench.boards import expand, lines, reproduce
from msabench.cli import cli
from msabench.workers import Workers
from test_catalog import catalog_with

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def catalog():
    return catalog_with(Plugin(), fakeunits.Plugin())


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def asked(method, dataset="tiny-data", seeds=(1111, 1112), results="results", epochs=2, **options):
    return Request(method, dataset, seeds=seeds, max_epochs=epochs, results=results, leaderboards="pages", **options)


BOARD = [asked("tiny-staged-text"), asked("tiny-staged-text-too"), asked("tiny-text", checkpoints=False)]


def numbers(folder):
    """{result file relative to `folder`: (metrics, test predictions, epochs)} of every result under it."""
    found = {}
    for path in sorted(Path(folder).rglob("seed-*.json")):
        result = RunResult.load(path)
        found[str(path.relative_to(folder))] = (result.metrics, result.predictions, result.history)
    return found


def test_lines_expand_into_units_with_shared_stage_runs_once_and_finals_after_their_stages(catalog):
    planned = lines(BOARD, ["runs:1", "runs:2", "runs:3"], catalog=catalog)
    jobs = expand(planned)
    assert [(job.line.name, job.seed, job.unit.where) for job in jobs] == [
        ("runs:1", 1111, "seed 1111, stage tiny-text"),
        ("runs:1", 1111, "seed 1111"),
        ("runs:1", 1112, "seed 1112, stage tiny-text"),
        ("runs:1", 1112, "seed 1112"),
        ("runs:2", 1111, "seed 1111"),  # its stage run is runs:1's
        ("runs:2", 1112, "seed 1112"),
        ("runs:3", 1111, "seed 1111"),  # the same result file as the stage run, without its checkpoint: after it
        ("runs:3", 1112, "seed 1112"),
    ]
    stage, final, _, _, too, _, plain, _ = jobs
    assert stage.shared == [planned[1]] and final.after == [stage] and too.after == [stage]
    assert plain.after == [stage] and plain.unit.path == stage.unit.path and not plain.unit.keep


def test_workers_give_the_numbers_of_sequential_runs_and_record_where_they_ran(catalog, tmp_path):
    for request in BOARD:  # one `msabench run` after another
        execute(plan(replace(request, results="sequential"), catalog=catalog), progress=False)
    report = reproduce(BOARD, workers=2, catalog=catalog, progress=False)
    assert not report.failed, report.text()
    assert [report.count(state) for state in ("trained", "resumed", "skipped", "failed")] == [6, 0, 2, 0]
    assert numbers("results") == numbers("sequential") and len(numbers("results")) == 6
    for path in Path("results").rglob("seed-*.json"):
        runner = json.loads(path.read_text())["request"]["runner"]
        assert runner["kind"] == "worker" and runner["host"]
    sequential = RunResult.load(next(Path("sequential").rglob("seed-1111.json")))
    assert sequential.request["runner"]["kind"] == "sequential"
    assert {page.name for page in report.pages} == {"tiny-data.md"}
    checked = CliRunner().invoke(cli, ["leaderboard", "--check", "--results", "results", "--out", "pages"])
    assert checked.exit_code == 0, checked.output
    for job in report.jobs:  # each unit trained in its worker logged there
        if job.state == "trained":
            assert f"{job.unit.where}: trains (worker pid" in job.log.read_text()


def test_a_crashed_unit_fails_alone_with_its_resume_command_and_absent_data_is_skipped(catalog, caplog):
    board = [asked("tiny-after-killed", seeds=(1111,)), asked("tiny", seeds=(1111,)), asked("tiny", "mosi")]
    report = reproduce(board, ["runs:1", "runs:2", "runs:3"], workers=2, catalog=catalog, progress=False)
    killed, final, other = report.jobs
    assert killed.state == "failed" and killed.error == "its process was killed by SIGKILL (out of memory?)"
    assert final.state == "failed" and final.error == "not started: seed 1111, stage tiny-killed failed"
    assert other.state == "trained" and other.unit.path.is_file()
    assert [line.name for line in report.absent] == ["runs:3"] and "runs:3 (tiny on mosi): skipped" in caplog.text
    text = report.text()
    assert "1 trained, 0 resumed, 0 skipped, 2 failed" in text
    assert "Skipped runs:3 (tiny on mosi): its data is not on this machine (no " in text
    resume = (
        "  resume: msabench run --method tiny-after-killed --dataset tiny-data --seeds 1111 --max-epochs 2 "
        "--results results --leaderboards pages"
    )
    assert text.count(resume) == 2 and "seed 1111, stage tiny-killed: trains (worker pid" in killed.log.read_text()
    assert [page.name for page in report.pages] == ["tiny-data.md"]


def test_each_line_keeps_its_own_data_until_its_units_are_done(tmp_path):
    workers = Workers(1, tmp_path)
    first, second = workers.put(b"first"), workers.put(b"second")
    workers.drop(first)
    third = workers.put(b"third")
    assert not first.exists() and second.read_bytes() == b"second" and third.read_bytes() == b"third"


@pytest.fixture
def cli_catalog(catalog, monkeypatch):
    monkeypatch.setattr("msabench.cli.options.load_catalog", lambda: catalog)


def test_the_command_reads_runs_files_selects_lines_and_dry_runs(cli_catalog, tmp_path):
    runs = Path("runs.txt")
    runs.write_text("# method dataset [msabench run flags]\ntiny tiny-data --max-epochs 2\n\ntiny mosi\n")
    command = ["reproduce", str(runs), "--seeds", "1111", "--leaderboards", "pages"]
    dry = CliRunner().invoke(cli, [*command, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "runs.txt:4 (tiny on mosi): skipped, its data is not on this machine" in dry.output
    line = (
        "  runs.txt:2 (tiny on tiny-data), seed 1111: {} -> results/tiny-data/tiny/mmsa-1+max_epochs=2/seed-1111.json"
    )
    assert line.format("trains") in dry.output and not Path("results").exists()
    done = CliRunner().invoke(cli, [*command, "--only", "tiny-data", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "1 units in " in done.output and "1 trained, 0 resumed, 0 skipped, 0 failed" in done.output
    again = CliRunner().invoke(cli, [*command, "--dry-run"])
    assert (
        line.format("result exists: skipped if its data, settings and stages match, refused otherwise") in again.output
    )
    for flags, message in [
        (["--only", "mosei"], "--only mosei: no line of runs.txt has that method or dataset."),
        (["--workers", "0"], "Invalid value for '--workers'"),
    ]:
        refused = CliRunner().invoke(cli, [*command, *flags])
        assert refused.exit_code != 0 and message in refused.output
    runs.write_text("tiny tiny-data --max-epochs 2 --bogus\n")
    refused = CliRunner().invoke(cli, command)
    assert refused.exit_code == 1
    assert (
        "Error: runs.txt:1: No such option '--bogus' (a line is `method dataset [msabench run flags]`)."
        in refused.output
    )


# -- in processes of their own: a killed driver, Ray -----------------------------------------------------------

LAUNCH = """
import fakecli, fakeunits, msabench.plugins
def manager(load_entrypoints=True):
    pm = fakecli.with_fakes(load_entrypoints)
    pm.register(fakeunits.Plugin(), name="fakeunits")
    return pm
msabench.plugins.get_plugin_manager = manager
from msabench.cli import cli
cli(prog_name="msabench")
"""


def command(*args, **options):
    """`msabench reproduce ARGS` with the fakes, in a process of its own (a Popen)."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "RAY_AUTH_MODE": "disabled",
    }
    argv = [sys.executable, "-c", LAUNCH, "reproduce", *map(str, args), "--no-progress"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options)


def unlocked(folder, timeout=60.0) -> bool:
    """Whether every unit lock under `folder` is free (no process trains there), waiting up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = 0
        for lock in Path(folder).rglob(".seed-*.lock"):
            with open(lock, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held += 1
        if not held:
            return True
        time.sleep(0.1)
    return False


def test_a_killed_reproduce_resumes_without_retraining_finished_units(tmp_path):
    Path("runs.txt").write_text("tiny tiny-data --max-epochs 2\ntiny-slow tiny-data --max-epochs 6\n")
    driver = command("runs.txt", "--seeds", "1111,1112", "--workers", "2")
    fast = [Path(f"results/tiny-data/tiny/mmsa-1+max_epochs=2/seed-{seed}.json") for seed in (1111, 1112)]
    slow = Path("results/tiny-data/tiny-slow/mmsa-1+max_epochs=6")
    while driver.poll() is None and not (all(p.is_file() for p in fast) and any(slow.glob("*.resume.pt"))):
        time.sleep(0.02)
    assert driver.poll() is None, driver.stdout.read()  # killed in the middle of the slow units
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    assert unlocked("results")  # its workers died with it
    assert not list(slow.glob("seed-*.json"))
    before = {path: path.read_bytes() for path in fast}
    again = command("runs.txt", "--seeds", "1111,1112", "--workers", "2")
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert {path: path.read_bytes() for path in fast} == before
    assert "2 skipped" in output and "0 failed" in output and " resumed in " in output
    for seed in (1111, 1112):
        assert RunResult.load(slow / f"seed-{seed}.json").epochs == 6


@pytest.fixture
def two_nodes(tmp_path):
    """A Ray head and a second Ray node on this machine, one CPU each, on ports of their own; its address. Both are
    stopped (with every process they started) afterwards."""
    pytest.importorskip("ray", reason="pip install 'msabench[sweep]'")
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # short: Ray's socket paths must fit 107 characters
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    ray = [str(Path(sys.executable).with_name("ray")), "start", "--num-cpus", "1", "--num-gpus", "0", "--block"]
    nodes, port = [], free_port()

    def start(name, *flags):
        out = temp / f"{name}.out"
        ports = ["--node-manager-port", free_port(), "--object-manager-port", free_port()]
        # Worker ports: a range of each node's own in 20000-29999, above Ray's fixed defaults (client server 10001)
        # and below the kernel's ephemeral ports (32768 up), which free_port() hands out for the other ports.
        first = 20000 + os.getpid() % 49 * 200 + 100 * len(nodes)
        ports += ["--min-worker-port", first, "--max-worker-port", first + 99]
        for flag in ("dashboard-agent-listen", "dashboard-agent-grpc", "metrics-export", "runtime-env-agent"):
            ports += [f"--{flag}-port", free_port()]
        argv = [*ray, *map(str, flags), "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *map(str, ports)]
        with open(out, "w") as stream:
            node = subprocess.Popen(argv, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        nodes.append(node)
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in out.read_text():
            assert node.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)

    try:
        start("head", "--head", "--port", port, "--temp-dir", temp, "--include-dashboard", "false")
        start("second", "--address", f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        for node in reversed(nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(60)
            with pytest.raises(ProcessLookupError):  # nothing of its process group is left
                for _ in range(100):
                    os.killpg(node.pid, signal.SIGKILL)
                    time.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_ray_nodes_give_the_numbers_of_local_workers(two_nodes, catalog, tmp_path):
    Path("runs.txt").write_text("tiny-staged-text tiny-data --max-epochs 2\ntiny tiny-data --max-epochs 1\n")
    done = command("runs.txt", "--seeds", "1111,1112", "--address", two_nodes, "--results", "on-ray")
    output, _ = done.communicate(timeout=300)
    assert done.returncode == 0, output
    assert "6 units in " in output and "6 trained, 0 resumed, 0 skipped, 0 failed" in output
    board = [asked("tiny-staged-text", results="workers"), asked("tiny", results="workers", epochs=1)]
    workers = reproduce(board, workers=2, catalog=catalog, progress=False)
    assert not workers.failed
    assert numbers("on-ray") == numbers("workers") and len(numbers("on-ray")) == 6
    runners = [json.loads(path.read_text())["request"]["runner"] for path in Path("on-ray").rglob("seed-*.json")]
    assert {runner["kind"] for runner in runners} == {"ray"}
    assert len({runner["node"] for runner in runners}) == 2  # both nodes trained units


def test_address_local_starts_ray_here_with_the_numbers_of_local_workers(catalog):
    pytest.importorskip("ray", reason="pip install 'msabench[sweep]'")
    Path("runs.txt").write_text("tiny tiny-data --max-epochs 2\n")
    done = command("runs.txt", "--seeds", "1111,1112", "--address", "local", "--results", "on-ray")
    output, _ = done.communicate(timeout=300)
    assert done.returncode == 0, output
    assert "Started a local Ray instance" in output and "2 trained, 0 resumed, 0 skipped, 0 failed" in output
    assert not reproduce([asked("tiny", results="workers")], workers=2, catalog=catalog, progress=False).failed
    assert numbers("on-ray") == numbers("workers") and len(numbers("on-ray")) == 2
    for path in Path("on-ray").rglob("seed-*.json"):
        assert RunResult.load(path).request["runner"]["kind"] == "ray"
