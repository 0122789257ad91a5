"""Charts: what each one draws (numbers read back from the artists), deterministic bytes, and the commands."""

import json
import math

import pytest
from click.testing import CliRunner

from msabench.cli import cli
from msabench.plot import chart_name, leaderboard_chart, robustness_curves, save, training_curves
from msabench.results import RunResult, result_path
from test_stats import REPORTED, constructed, seeds


def with_history(result: RunResult) -> RunResult:
    result.history = [
        {
            "epoch": epoch,
            "train": {"total": 1.0 / epoch, "msr": 0.5 / epoch, "cl": 0.1},
            "valid": {"loss": 1.2 / epoch, "Acc-2": 0.5 + 0.05 * epoch, "MAE": 0.5 - 0.02 * epoch},
            "lambda": {"uni": 0.5 + 0.01 * epoch, "cl": 0.5 - 0.01 * epoch},
        }
        for epoch in range(1, 6)
    ]
    result.best_epoch, result.epochs = 4, 5
    result.method_info["key_metric"] = "MAE"
    return result


def test_training_curves_panels_and_values():
    figure = training_curves(with_history(seeds("dmmsa", [0.8])[0]))
    axes = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in axes] == [
        "Loss",
        "Validation Acc-2",
        "Validation MAE (selects)",
        "Training loss terms",
        "Logged: lambda",
    ]
    loss, acc, mae, terms, weights = axes
    assert [line.get_label() for line in loss.get_lines()[:2]] == ["train", "valid"]
    assert list(loss.get_lines()[1].get_ydata()) == pytest.approx([1.2 / e for e in range(1, 6)])
    assert list(acc.get_lines()[0].get_ydata()) == pytest.approx([55, 60, 65, 70, 75])  # percent
    assert acc.get_ylabel() == "Acc-2 (%) ↑" and mae.get_ylabel() == "MAE ↓"
    assert [line.get_label() for line in terms.get_lines()[:2]] == ["msr", "cl"]
    assert [line.get_label() for line in weights.get_lines()[:2]] == ["lambda[uni]", "lambda[cl]"]
    assert list(weights.get_lines()[1].get_ydata()) == pytest.approx([0.49, 0.48, 0.47, 0.46, 0.45])
    assert all(axis.get_lines()[-1].get_xdata()[0] == 4 for axis in axes)  # the selected epoch, in every panel
    assert "selected epoch 4" in [text.get_text() for text in loss.get_legend().get_texts()]


def test_training_curves_need_a_history():
    with pytest.raises(ValueError, match="no history to plot"):
        training_curves(seeds("tfn", [0.8])[0])


def test_leaderboard_chart_draws_means_std_seeds_and_reported_numbers():
    figure = leaderboard_chart("ch-sims", constructed())
    axes = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in axes] == [
        "Acc-2 (%) ↑",
        "Acc-3 (%) ↑",
        "Acc-5 (%) ↑",
        "F1 (%) ↑",
        "MAE ↓",
        "Corr ↑",
    ]
    acc = axes[0]
    rows = [label.get_text() for label in acc.get_yticklabels()]
    assert rows == ["best", "two", "three", "near-a", "near-b", "far"]  # the leaderboard's order
    means = [container.lines[0].get_xdata()[0] for container in acc.containers]
    assert means == pytest.approx([80.8, 80.5, 80.0, 79.6, 79.5, 70.8])
    best_bar = acc.containers[0].lines[2][0].get_segments()[0]  # the ± std segment, sample std of 80, 81, 82, 80, 81
    assert best_bar[1][0] - best_bar[0][0] == pytest.approx(2 * 0.83666 * 1, rel=1e-4)
    colors = [container.lines[0].get_color() for container in acc.containers]
    assert colors == ["#0072B2", "#8C8C8C", "#56B4E9", "#56B4E9", "#56B4E9", "#8C8C8C"]  # best, untested, ties, far
    reported = [c for c in acc.collections if c.get_gid() == "reported"]
    assert len(reported) == 1 and list(reported[0].get_offsets()[0]) == [80.9, 0]
    assert [list(c.get_offsets()[:, 0]) for c in acc.collections if c.get_gid() == "seeds"][0] == pytest.approx(
        [80, 81, 82, 80, 81]
    )
    mae = axes[4]
    assert [c for c in mae.collections if c.get_gid() == "reported"][0].get_offsets()[0][0] == 0.40
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "not significantly different (≈)" in legend and "reported" in legend


def test_leaderboard_chart_one_protocol_only():
    results = constructed()
    results[0].protocol = {**results[0].protocol, "id": "mmsa-1+max_epochs=3"}
    with pytest.raises(ValueError, match="one protocol"):
        leaderboard_chart("ch-sims", results)
    assert chart_name("ch-sims", "mmsa-1") == "ch-sims.svg"
    assert chart_name("ch-sims", "mmsa-1+max_epochs=3") == "ch-sims.mmsa-1+max_epochs=3.svg"


def test_saved_bytes_are_deterministic_and_carry_no_metadata(tmp_path):
    first = save(leaderboard_chart("ch-sims", constructed()), tmp_path / "a")
    second = save(leaderboard_chart("ch-sims", list(reversed(constructed()))), tmp_path / "b")
    assert [p.suffix for p in first] == [".png", ".svg"]
    for one, other in zip(first, second, strict=True):
        assert one.read_bytes() == other.read_bytes()
    png, svg = (p.read_bytes() for p in first)
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png.lower()
    assert b"<dc:date>" not in svg and b"Matplotlib" not in svg


def test_plot_command_and_leaderboard_charts(tmp_path):
    results = tmp_path / "results"
    for r in [*seeds("best", [0.8]), *seeds("far", [0.7])]:  # few runs: a chart takes about a second to draw
        with_history(r).save(result_path(results, r.dataset, r.method, r.seed, r.variant, protocol=r.protocol["id"]))
    runner = CliRunner()
    outcome = runner.invoke(
        cli, ["plot", "--results", str(results), "--out", str(tmp_path / "plots"), "--format", "png"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "plots/ch-sims/best/mmsa-1/seed-1111.curves.png").is_file()
    assert (tmp_path / "plots/ch-sims.png").is_file()
    assert len(list((tmp_path / "plots").rglob("*.png"))) == 2 + 1  # a curve per run, one chart
    assert not list((tmp_path / "plots").rglob("*.svg"))

    boards = tmp_path / "boards"
    assert runner.invoke(cli, ["leaderboard", "--results", str(results), "--out", str(boards)]).exit_code == 0
    page = (boards / "ch-sims.md").read_text()
    assert "![ch-sims, protocol mmsa-1: each metric's seed mean ± std](charts/ch-sims.svg)" in page
    assert (boards / "charts/ch-sims.svg").is_file()
    check = runner.invoke(cli, ["leaderboard", "--results", str(results), "--out", str(boards), "--check"])
    assert check.exit_code == 0, check.output
    (boards / "charts/ch-sims.svg").unlink()  # the page embeds a chart that is gone: stale
    assert runner.invoke(cli, ["leaderboard", "--results", str(results), "--out", str(boards), "--check"]).exit_code
    runner.invoke(cli, ["leaderboard", "--results", str(results), "--out", str(boards), "--no-charts"])
    assert "charts/" not in (boards / "ch-sims.md").read_text()


def test_reported_markers_skip_variants():
    results = seeds("best", [0.8, 0.81, 0.82], reported=REPORTED, variant="train.lr=0.1")
    acc = leaderboard_chart("ch-sims", results).axes[0]
    assert not [c for c in acc.collections if c.get_gid() == "reported"]
    assert not math.isnan(acc.containers[0].lines[0].get_xdata()[0])


def robustness_report():
    levels = [i / 10 for i in range(10)]
    curve = lambda start: {  # noqa: E731
        "levels": levels,
        "metrics": [{"Acc-2": start - 0.03 * i, "MAE": 0.2 + 0.01 * i} for i in range(10)],
    }
    return {
        "schema": 1,
        "dataset": "ch-sims",
        "row": "best",
        "method": "best",
        "seed": 1111,
        "test_samples": 24,
        "metric": "Acc-2",
        "secondary": "MAE",
        "clean": {"Acc-2": 0.8, "MAE": 0.2},
        "curves": {
            "text": curve(0.8),
            "audio": curve(0.8),
            "all": {**curve(0.8), "levels": [i / 30 for i in range(10)]},
        },
        "missing": {"text": {"Acc-2": 0.6, "MAE": 0.4}, "audio": {"Acc-2": 0.7, "MAE": 0.3}},
        "summary": {"relative": {"text": 0.58, "audio": 0.58, "all": 0.58}, "effective": {"text": 0.1, "audio": None}},
        "reference": {"row": "lf-dnn", "curves": {"text": curve(0.7)}},
    }


def test_robustness_curves():
    figure = robustness_curves(robustness_report())
    axes = [axis for axis in figure.axes if axis.get_title()]
    titles = [axis.get_title() for axis in axes]
    assert titles[:4] == [
        "text\nRR 0.580, ER +0.100",
        "audio\nRR 0.580",
        "all modalities\nRR 0.580",
        "missing modalities\n(dotted: clean)",
    ]
    assert len(axes) == 8  # a second row for MAE
    text = axes[0]
    assert [line.get_label() for line in text.get_lines()] == ["best", "lf-dnn (reference)"]
    assert list(text.get_lines()[0].get_ydata()) == pytest.approx([80 - 3 * i for i in range(10)])
    assert list(axes[2].get_lines()[0].get_xdata())[-1] == pytest.approx(0.3)  # all modalities at i/30
    assert [t.get_text() for t in axes[3].get_yticklabels()] == ["no text", "no audio"]
    assert axes[4].get_ylabel() == "MAE ↓"


def test_plot_command_draws_robustness_reports_beside_results(tmp_path):
    results = tmp_path / "results"
    (run,) = seeds("best", [0.8])
    path = result_path(results, run.dataset, run.method, run.seed, protocol=run.protocol["id"])
    run.save(path)
    path.with_name("seed-1111.robustness.json").write_text(json.dumps(robustness_report()))
    outcome = CliRunner().invoke(
        cli,
        [
            "plot",
            "--results",
            str(results),
            "--out",
            str(tmp_path / "plots"),
            "--kind",
            "robustness",
            "--format",
            "png",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert [p.name for p in (tmp_path / "plots").rglob("*.png")] == ["seed-1111.robustness.png"]
