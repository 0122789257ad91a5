"""Leaderboards: a pure function of result files, with the published columns and a golden file."""

import math
import os
import random
from pathlib import Path

import pytest

from msabench import DataError, RunResult
from msabench.leaderboard import render, render_dataset
from msabench.protocol import Protocol

GOLDEN = Path(__file__).parent / "golden" / "mosi.md"
MOSI_KEYS = ("Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-3", "Acc-5", "Acc-7", "MAE", "Corr")
REPORTED = [
    {
        "dataset": "mosi",
        "source": "MMSA results/result-stat.md",
        "metrics": {"Acc-2_has0": 77.99, "MAE": 0.9473, "Corr": 0.6733},
    }
]


DEFAULT_PROTOCOL = Protocol()


def result(
    method,
    seed,
    values,
    *,
    dataset="mosi",
    family="mosi",
    protocol=DEFAULT_PROTOCOL,
    variant="",
    verified=True,
    reported=(),
):
    keys = MOSI_KEYS if family == "mosi" else ("Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr")
    return RunResult(
        dataset=dataset,
        method=method,
        seed=seed,
        metrics=dict(zip(keys, values, strict=True)),
        protocol=protocol.to_dict(),
        task={"kind": "regression", "family": family, "classes": []},
        variant=variant,
        method_info={"paper": f"{method} paper", "reported": list(reported)},
        data={"verified": verified, "synthetic": False, "labels_sha256": "0" * 64},
        predictions={"ids": ["a"], "predictions": [0.0]},
        hardware={"device": "cpu"},
        versions={"msabench": "0.1.0"},
        request={
            "command": f"msabench run --method {method} --dataset {dataset} --seeds {seed}",
            "commit": None,
            "timestamp": "2026-12-07T00:00:00+00:00",
            "threads": 1,
        },
    )


def fixture_results():
    return [
        result("tfn", 1111, [0.79, 0.781, 0.79, 0.791, 0.70, 0.40, 0.35, 0.95, 0.67], reported=REPORTED),
        result("tfn", 1112, [0.77, 0.759, 0.77, 0.771, 0.68, 0.38, 0.33, 0.97, 0.65], reported=REPORTED),
        result("lf-dnn", 1111, [0.77, 0.77, 0.78, 0.78, 0.69, 0.39, 0.36, 0.93, 0.66]),
        result("lf-dnn", 1112, [0.77, 0.77, 0.78, 0.78, 0.69, 0.39, 0.36, 0.93, 0.68]),
        result("lf-dnn", 1111, [0.70] * 7 + [1.0, 0.5], variant="text=other", verified=False),
        result("lmf", 1111, [0.80, 0.8, 0.8, 0.8, 0.7, 0.4, 0.3, 1.1, math.nan], protocol=Protocol(max_epochs=3)),
    ]


def test_golden_markdown():
    page = render_dataset("mosi", fixture_results())
    if os.environ.get("MSABENCH_UPDATE_GOLDEN"):  # after an intended change: review the diff, then commit it
        GOLDEN.write_text(page, encoding="utf-8")
    assert page == GOLDEN.read_text(encoding="utf-8")


def test_output_does_not_depend_on_file_order():
    results = fixture_results()
    shuffled = results[:]
    random.Random(3).shuffle(shuffled)
    assert render(shuffled) == render(results)


def test_columns_arrows_mean_std_and_best():
    page = render_dataset("mosi", fixture_results())
    main = page.split("## Protocol `mmsa-1`")[1].split("## Protocol")[0]
    header = next(line for line in main.splitlines() if line.startswith("| Method"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "Method",
        "Acc-2_has0 ↑",
        "F1_has0 ↑",
        "Acc-2_non0 ↑",
        "F1_non0 ↑",
        "Acc-3 ↑",
        "Acc-5 ↑",
        "Acc-7 ↑",
        "MAE ↓",
        "Corr ↑",
        "Seeds",
        "Paper",
    ]
    tfn = next(line for line in main.splitlines() if line.startswith("| tfn "))
    # mean ± sample std (ddof=1) of 0.79 and 0.77, in percent
    assert "**78.00 ± 1.41**" in tfn and "| 2 " in tfn
    assert "**78.00 ± 0.00**" in next(
        line for line in main.splitlines() if line.startswith("| lf-dnn ")
    )  # a tie: both bold
    lf_dnn = next(line for line in main.splitlines() if line.startswith("| lf-dnn "))
    assert "**0.9300 ± 0.0000**" in lf_dnn  # lowest MAE is best
    assert "**67.00 ± 1.41**" not in lf_dnn and "0.6700 ± 0.0141" in lf_dnn
    assert "| lf-dnn [text=other]† " in main and "† at least one run used a data file" in main
    assert main.index("| tfn ") < main.index("| lf-dnn ") < main.index("| lf-dnn [text=other]")  # ranked by Acc-2_has0


def test_protocols_are_never_ranked_together():
    page = render_dataset("mosi", fixture_results())
    other = page.split("## Protocol `mmsa-1+max_epochs=3`")[1]
    assert "| lmf " in other and "| tfn " not in other
    assert "| nan " in other.split("| lmf ")[1].splitlines()[0] + " "


def test_reported_vs_reproduced():
    page = render_dataset("mosi", fixture_results())
    table = page.split("### Reported vs reproduced")[1].split("## Protocol")[0]
    row = next(line for line in table.splitlines() if line.startswith("| tfn "))
    assert "77.99 / 78.00 (+0.01)" in row and "0.9473 / 0.9600 (+0.0127)" in row
    assert "lf-dnn" not in table
    assert page.count("### Reported vs reproduced") == 1  # the lmf rows under another protocol have no reported numbers


def test_one_seed_shows_no_std_and_sims_has_its_own_columns():
    page = render_dataset(
        "ch-sims", [result("tfn", 1, [0.7, 0.6, 0.4, 0.69, 0.45, 0.55], dataset="ch-sims", family="sims")]
    )
    header = next(line for line in page.splitlines() if line.startswith("| Method"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "Method",
        "Acc-2 ↑",
        "Acc-3 ↑",
        "Acc-5 ↑",
        "F1 ↑",
        "MAE ↓",
        "Corr ↑",
        "Seeds",
        "Paper",
    ]
    row = next(line for line in page.splitlines() if line.startswith("| tfn "))
    assert "70.00" in row and "±" not in row


def test_duplicate_seeds_and_mixed_families_are_errors():
    with pytest.raises(DataError, match="two results for tfn on mosi, seed 1111"):
        render_dataset("mosi", [result("tfn", 1111, [0.5] * 9), result("tfn", 1111, [0.6] * 9)])
    with pytest.raises(DataError, match="disagree on the metric family"):
        render_dataset("mosi", [result("tfn", 1, [0.5] * 9), result("lmf", 1, [0.5] * 6, family="sims")])


def test_synthetic_pages_say_so():
    synthetic = result("tfn", 1, [0.5] * 9, dataset="synthetic-mosi")
    synthetic.data["synthetic"] = True
    assert "not comparable with real-data results" in render_dataset("synthetic-mosi", [synthetic])
    assert "not comparable" not in render_dataset("mosi", [result("tfn", 1, [0.5] * 9)])
