"""The result format's JSON Schema: the committed results validate, the published file is current, and each kind of
bad result gets its own one-line problem."""

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from msabench import schema
from msabench.results import SCHEMA, result_files

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "leaderboards" / "results"
REQUEST = {
    "command": "msabench run --method tiny --dataset synthetic-mosi --seeds 1111",
    "commit": "e796182",
    "timestamp": "2026-11-23T09:30:00Z",
    "threads": 1,
}


@pytest.fixture(scope="module")
def sims():
    """A committed CH-SIMS-family result (with stages)."""
    path = RESULTS / "synthetic-sims" / "dmmsa" / "mmsa-1" / "seed-1111.json"
    return json.loads(path.read_text())


def test_the_published_schema_file_is_the_one_the_code_builds_and_a_valid_draft_2020_12_schema():
    published = json.loads((ROOT / "docs" / "result.schema.json").read_text())
    assert (ROOT / "docs" / "result.schema.json").read_text() == schema.render(), (
        "docs/result.schema.json is stale: python -c 'from msabench import schema; print(schema.render(), end=\"\")' "
        "> docs/result.schema.json"
    )
    Draft202012Validator.check_schema(published)
    assert published["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert published["properties"]["schema"]["maximum"] == SCHEMA


def test_every_committed_result_validates():
    paths = result_files(RESULTS)
    assert len(paths) > 100
    for path in paths:
        data, problems = schema.load(path)
        assert problems == [] and schema.validate(data) == [], path


def test_metrics_out_of_range_for_their_kind_are_each_named(sims):
    bad = copy.deepcopy(sims)
    bad["metrics"] |= {"Acc-2": 7.3, "F1": -0.1, "MAE": -0.5, "Corr": 1.5}
    assert schema.validate(bad) == [
        "metrics.Acc-2: 7.3 is out of range (greater than the maximum of 1)",
        "metrics.Corr: 1.5 is out of range (greater than the maximum of 1)",
        "metrics.F1: -0.1 is out of range (less than the minimum of 0)",
        "metrics.MAE: -0.5 is out of range (less than the minimum of 0)",
    ]


def test_only_a_metric_that_can_be_undefined_may_be_null(sims):
    constant = copy.deepcopy(sims)
    constant["metrics"]["Corr"] = None  # a constant prediction: Pearson r is undefined
    assert schema.validate(constant) == []
    bad = copy.deepcopy(sims)
    bad["metrics"]["Acc-3"] = None
    (problem,) = schema.validate(bad)
    assert problem.startswith("metrics.Acc-3: null where a number is required")


def test_a_metric_of_another_family_and_a_missing_one_are_refused(sims):
    bad = copy.deepcopy(sims)
    del bad["metrics"]["F1"]
    bad["metrics"]["Acc-7"] = 0.5
    assert schema.validate(bad) == [
        'metrics: "Acc-7" is not one of its family\'s metrics (Acc-2, Acc-3, Acc-5, F1, MAE, Corr)',
        "metrics: 'F1' is a required property",
    ]


def test_missing_and_unknown_fields_are_refused(sims):
    bad = copy.deepcopy(sims)
    del bad["protocol"]
    bad["tuned_by_hand"] = True
    assert schema.validate(bad) == [
        "(the result): Additional properties are not allowed ('tuned_by_hand' was unexpected)",
        "(the result): 'protocol' is a required property",
    ]


def test_a_format_newer_than_the_code_is_refused_in_one_line(sims):
    newer = copy.deepcopy(sims) | {"schema": SCHEMA + 1}
    assert schema.validate(newer) == [
        f"schema: format version {SCHEMA + 1} is newer than this msabench reads (1..{SCHEMA}): upgrade msabench to "
        "verify or render it"
    ]


def test_request_is_optional_in_version_1_and_required_from_version_2(sims):
    v1 = copy.deepcopy(sims) | {"schema": 1}
    assert schema.validate(v1, version=2) == [] and schema.validate(v1 | {"request": REQUEST}, version=1) == []
    v2 = copy.deepcopy(sims) | {"schema": 2}
    assert schema.validate(v2, version=2) == ["(the result): 'request' is a required property"]
    assert schema.validate(v2 | {"request": REQUEST}, version=2) == []
    assert schema.validate(v2 | {"request": REQUEST | {"commit": None}}, version=2) == []  # not run from a checkout
    bad = REQUEST | {"command": "python train.py", "timestamp": "23/11/2026", "threads": 0}
    assert schema.validate(v2 | {"request": bad}, version=2) == [
        'request.command: "python train.py" is not an msabench command',
        "request.threads: 0 is out of range (less than the minimum of 1)",
        'request.timestamp: "23/11/2026" is not a UTC time in ISO 8601, e.g. 2026-11-23T09:30:00Z',
    ]
    assert schema.json_schema(2)["properties"]["schema"]["maximum"] == 2


def test_withheld_labels_need_their_digest(sims):
    withheld = copy.deepcopy(sims)
    labels = withheld["predictions"].pop("labels")
    assert schema.validate(withheld) == [
        "(the result): needs predictions.labels, or data.labels_sha256 where the labels are withheld"
    ]
    withheld["data"]["labels_sha256"] = schema.labels_digest(labels)
    assert schema.validate(withheld) == []
    assert schema.labels_digest([0.5, -1.0]) == schema.labels_digest([0.5, -1.0]) != schema.labels_digest([-1.0, 0.5])


def test_what_json_schema_cannot_say_is_checked_too(sims, tmp_path):
    short = copy.deepcopy(sims)
    short["predictions"]["ids"].pop()
    short["best_epoch"] = short["epochs"] + 1
    assert schema.validate(short) == [
        "predictions: the arrays disagree in length (ids 149, predictions 150, labels 150); each holds one entry per "
        "sample",
        f"best_epoch: {short['epochs'] + 1} is after the last epoch ({short['epochs']})",
    ]
    path = tmp_path / "seed-1111.json"
    path.write_text(json.dumps(sims).replace('"Corr": 0.89', '"Corr": NaN, "x": 0.89', 1))
    data, problems = schema.load(path)
    assert data is None and problems == ["not valid JSON: NaN is not JSON (an undefined metric is written as null)"]
    assert schema.validate([1, 2]) == ["a result is a JSON object, not list"]


def test_a_result_with_a_request_reads_as_a_run_result_and_its_request(sims):
    result, request = schema.to_result(copy.deepcopy(sims) | {"request": REQUEST})
    assert (result.method, result.seed, request) == ("dmmsa", 1111, REQUEST)
    assert schema.to_result(copy.deepcopy(sims))[1] is None
