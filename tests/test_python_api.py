"""The run API (`msabench.run`, `plan`, `execute`, `load_results`, ...) and docs/python-api.md, whose examples run
here as a notebook would run them."""

import re
from pathlib import Path

import pytest

import msabench
from msabench import Request

DOC = Path(__file__).parent.parent / "docs" / "python-api.md"


def test_the_python_api_page_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("msabench_baselines", reason="the page's examples train lf-dnn (msabench-baselines)")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    results, plan, rows = namespace["results"], namespace["plan"], namespace["rows"]
    assert [r.seed for r in results] == [1111, 1112] and all(r.metrics["MAE"] > 0 for r in results)
    assert results[0].request["command"].startswith("msabench run --method lf-dnn --dataset synthetic-mosi")
    assert plan.hparams["train"]["lr"] == 5e-4 and plan.hparams.source("train", "lr") == "user"
    assert plan.hparams.source("fusion", "dropout") == "method" and plan.variant == "train.lr=0.0005"
    assert len(rows) == 2 and set(rows["seed"]) == {1111, 1112}
    assert (tmp_path / "leaderboards" / "synthetic-mosi.md").is_file() and len(namespace["written"]) == 2


def test_run_returns_results_and_a_dry_run_returns_the_plan(tmp_path, monkeypatch, fakes):
    monkeypatch.chdir(tmp_path)
    plan = msabench.run("tiny", "synthetic-mosi", seeds=[3], max_epochs=1, dry_run=True)
    assert isinstance(plan, msabench.Plan) and plan.seeds == (3,) and plan.protocol.id == "mmsa-1+max_epochs=1"
    assert "seed 3: trains -> results/synthetic-mosi/tiny/mmsa-1+max_epochs=1/seed-3.json" in plan.describe()
    assert not (tmp_path / "results").exists()
    (result,) = msabench.run("tiny", "synthetic-mosi", seeds=[3], max_epochs=1, progress=False)
    assert result.request["threads"] == 1 and result.request["sources"]["train.lr"] == "method"
    assert result.request["command"] == (
        "msabench run --method tiny --dataset synthetic-mosi --seeds 3 --max-epochs 1 --threads 1"
    )
    again = msabench.plan(Request("tiny", "synthetic-mosi", seeds=(3,), max_epochs=1))
    assert "seed 3: result exists" in again.describe()


def test_hyper_parameters_record_where_each_value_came_from(fakes):
    plan = msabench.run("tiny", "synthetic-sims", sets={"fusion.dropout": 0.25}, dry_run=True)
    assert plan.hparams.sources() == {"train.batch_size": "method", "train.lr": "method", "fusion.dropout": "user"}
    assert plan.hparams.to_dict() == {"train": {"batch_size": 16, "lr": 0.01}, "fusion": {"dropout": 0.25}}
    with pytest.raises(TypeError):
        plan.hparams["train"]["lr"] = 1.0  # read-only: resolved once


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seeds": ()}, "--seeds is empty"),
        ({"seeds": (1, 1)}, "seed 1 is given twice"),
        ({"max_epochs": 0}, "--max-epochs must be a whole number >= 1; got 0"),
        ({"precision": "fp8"}, "--precision fp8: use one of fp32, bf16, fp16"),
        ({"sets": {"lr": 1}}, "--set lr: expected SECTION.KEY"),
        ({"sets": {"fusion.dropout": 1.5}}, "fusion.dropout must be a number in [0, 1); got 1.5"),
        ({"data_options": {"colour": "red"}}, "synthetic-mosi has no option colour"),
        ({"encoders": {"image": "mean-linear"}}, "tiny has no 'image' encoder"),
    ],
)
def test_the_plan_step_refuses_bad_requests_with_msabenchs_own_errors(fakes, fields, message):
    with pytest.raises(msabench.MsabenchError) as error:
        msabench.plan(Request("tiny", "synthetic-mosi", **fields))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_set_equal_to_the_default_is_not_a_new_row(fakes):
    assert msabench.run("tiny", "synthetic-mosi", sets={"train.lr": 0.01}, dry_run=True).variant == ""
    assert msabench.run("tiny", "synthetic-mosi", sets={"train.lr": 0.02}, dry_run=True).variant == "train.lr=0.02"
