"""`msabench results`: one row per run as CSV, JSON or Markdown, and the leaderboard command printing its pages."""

import csv
import io
import json
import math

import pytest
from click.testing import CliRunner

from msabench.cli import cli
from msabench.leaderboard import format_runs, runs
from msabench.results import result_path
from test_leaderboard import fixture_results


@pytest.fixture
def results_dir(tmp_path):
    for number, result in enumerate(fixture_results()):
        result.epochs, result.best_epoch, result.wall_time_s = 10 + number, 3, 1.5 + number
        result.peak_memory_mb = {"rss": 512.25}
        if result.method == "tfn":
            result.method_info["trainable_parameters"] = 12345
        path = result_path(
            tmp_path / "results",
            result.dataset,
            result.method,
            result.seed,
            result.variant,
            protocol=result.protocol["id"],
        )
        result.save(path)
    return tmp_path / "results"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_csv_has_one_row_per_run_and_every_column(results_dir):
    outcome = invoke("results", "--results", results_dir)
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader(io.StringIO(outcome.stdout)))
    assert len(rows) == 6
    assert list(rows[0]) == [
        "dataset",
        "method",
        "variant",
        "seed",
        "protocol",
        *("Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-3", "Acc-5", "Acc-7", "MAE", "Corr"),
        "epochs",
        "best_epoch",
        "wall_time_s",
        "peak_rss_mb",
        "peak_cuda_mb",
        "trainable_parameters",
        "verified",
        "synthetic",
    ]
    assert [(r["method"], r["variant"], r["seed"], r["protocol"]) for r in rows] == [
        ("lf-dnn", "", "1111", "mmsa-1"),
        ("lf-dnn", "", "1112", "mmsa-1"),
        ("lf-dnn", "text=other", "1111", "mmsa-1"),
        ("lmf", "", "1111", "mmsa-1+max_epochs=3"),
        ("tfn", "", "1111", "mmsa-1"),
        ("tfn", "", "1112", "mmsa-1"),
    ]
    tfn = rows[4]
    assert float(tfn["Acc-2_has0"]) == 0.79 and float(tfn["MAE"]) == 0.95  # full precision, fractions as stored
    assert tfn["trainable_parameters"] == "12345" and rows[0]["trainable_parameters"] == ""
    assert rows[3]["Corr"] == ""  # NaN: an empty cell, which pandas reads as NaN
    assert rows[2]["verified"] == "False" and tfn["verified"] == "True" and tfn["peak_cuda_mb"] == ""
    assert tfn["peak_rss_mb"] == "512.25" and tfn["epochs"] == "10" and tfn["best_epoch"] == "3"


def test_json_and_markdown_hold_the_same_rows(results_dir):
    data = json.loads(invoke("results", "--results", results_dir, "--format", "json").stdout)
    columns, rows = runs(fixture_results())
    assert len(data) == 6 and list(data[0]) == columns
    assert data[3]["Corr"] is None and data[4]["Acc-2_has0"] == 0.79
    markdown = invoke("results", "--results", results_dir, "--format", "markdown", "--dataset", "mosi").stdout
    lines = markdown.splitlines()
    assert lines[0].startswith("| dataset ") and len(lines) == 2 + 6
    assert format_runs(reversed(fixture_results())) == format_runs(fixture_results())  # sorted, whatever the order
    with pytest.raises(ValueError, match="unknown format"):
        format_runs(fixture_results(), "xml")


def test_results_errors(tmp_path, results_dir):
    assert "no results folder" in invoke("results", "--results", tmp_path / "nowhere").output
    outcome = invoke("results", "--results", results_dir, "--dataset", "mosei")
    assert (
        outcome.exit_code == 1 and "no result files (seed-*.json) under" in outcome.output and "mosei" in outcome.output
    )


def test_leaderboard_prints_the_pages(results_dir, tmp_path):
    outcome = CliRunner().invoke(cli, ["leaderboard", "--results", str(results_dir), "--out", str(tmp_path / "lb")])
    assert outcome.exit_code == 0, outcome.output
    page = (tmp_path / "lb/mosi.md").read_text()
    assert page in outcome.stdout and "| tfn " in outcome.stdout
    assert f"wrote {tmp_path / 'lb/mosi.md'}" in outcome.stderr


def test_nan_is_missing_not_a_number():
    results = fixture_results()
    results[0].metrics["MAE"] = math.inf
    assert runs(results)[1][4]["MAE"] is None  # tfn seed 1111 sorts fifth


def test_pandas_reads_the_csv_in_one_line(results_dir):
    pandas = pytest.importorskip("pandas")  # installed with `datasets`; not a dependency of msabench itself
    frame = pandas.read_csv(io.StringIO(invoke("results", "--results", results_dir).stdout))
    assert frame.shape == (6, 5 + 9 + 8)
    assert str(frame["seed"].dtype) == "int64" and str(frame["verified"].dtype) == "bool"
    assert math.isnan(frame.loc[3, "Corr"]) and frame.loc[4, "Acc-2_has0"] == 0.79
    assert frame.groupby("method")["seed"].count().to_dict() == {"lf-dnn": 3, "lmf": 1, "tfn": 2}
