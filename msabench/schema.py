"""The result file format as a JSON Schema (draft 2020-12), and validation of result files against it.

`json_schema()` builds the schema from the code that writes results (the `RunResult` fields, the `Protocol` fields,
the metric families and each metric's kind), so the two cannot drift apart; ``docs/result.schema.json`` is its
rendering (`render()`), and a test keeps the file equal to it. A result names its format's version in ``schema``;
the schema of version N accepts every result of versions 1..N and refuses a newer one:

- version 1: the fields `RunResult` writes; ``request`` (the command, commit, timestamp and thread count that
  produced the run) may be present;
- version 2: ``request`` is required.

`validate(data)` returns one line per problem (empty: valid), each naming the field and what is wrong with it.
Metrics must lie in range for their kind: accuracies and F1 are fractions in [0, 1], MAE >= 0, Corr in [-1, 1].
A metric that can be undefined (Corr of a constant prediction; the ``_non0`` metrics when every label is 0) may be
null; no other metric may. Results of real datasets may withhold the test labels and record their digest
(``data.labels_sha256``, see `labels_digest`) instead of ``predictions.labels``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from msabench.metrics import FAMILIES, METRICS
from msabench.protocol import Protocol
from msabench.results import SCHEMA, RunResult, result_files

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Metrics that are legitimately undefined on some data (NaN in Python, null in JSON).
UNDEFINED_ALLOWED = ("Corr", "Acc-2_non0", "F1_non0")
SHA256 = {"description": "a SHA-256 (64 lowercase hex digits)", "type": "string", "pattern": "^[0-9a-f]{64}$"}
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$"  # UTC, ISO 8601
RUNTIME = ("python", "torch", "numpy", "transformers", "datasets", "peft")  # versions that are not distributions


def metric_schema(name: str) -> dict[str, Any]:
    """The range of one metric: fractions in [0, 1] for accuracies and F1, MAE >= 0, Corr in [-1, 1]."""
    if METRICS[name].percent:
        schema: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
    elif name == "MAE":
        schema = {"type": "number", "minimum": 0}
    elif name == "Corr":
        schema = {"type": "number", "minimum": -1, "maximum": 1}
    else:  # a metric added to msabench.metrics without a range here: a number
        schema = {"type": "number"}
    if name in UNDEFINED_ALLOWED:
        schema["type"] = ["number", "null"]
    return {"description": METRICS[name].definition, **schema}


def json_schema(version: int = SCHEMA) -> dict[str, Any]:
    """The JSON Schema of result files of format versions 1..`version`."""
    metrics = {name: {"$ref": f"#/$defs/{name}"} for name in METRICS}  # each metric's range, defined once
    protocol_fields: dict[str, Any] = {f.name: {} for f in fields(Protocol)}  # a field added later: any value
    protocol_fields |= {
        "name": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        "patience": {"type": "integer", "minimum": 1},
        "max_epochs": {"type": "integer", "minimum": 1},
        "ddof": {"type": "integer", "minimum": 0},
        "precision": {"enum": ["fp32", "bf16", "fp16"]},
    }
    stored = [f.name for f in fields(RunResult)]
    properties: dict[str, Any] = {
        "schema": {
            "description": "the result format's version; a reader refuses a version newer than its own",
            "type": "integer",
            "minimum": 1,
            "maximum": version,
        },
        "dataset": {"type": "string", "minLength": 1},
        "method": {"type": "string", "minLength": 1},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
        "variant": {"type": "string"},
        "metrics": {
            "description": "test metrics of the selected checkpoint, fractions as stored (the leaderboard shows %)",
            "type": "object",
            "properties": metrics,
            "additionalProperties": False,
        },
        "valid_metrics": {
            "type": "object",
            "properties": {"loss": {"type": ["number", "null"]}, **metrics},
            "additionalProperties": False,
        },
        "protocol": {
            "type": "object",
            "properties": {"id": {"type": "string", "minLength": 1}, **protocol_fields},
            "required": ["id", *protocol_fields],
            "additionalProperties": False,
        },
        "task": {
            "type": "object",
            "properties": {
                "kind": {"enum": ["regression", "classification", "multilabel"]},
                "family": {"enum": list(FAMILIES)},
                "classes": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["kind", "family"],
        },
        "best_epoch": {"type": "integer", "minimum": 0},
        "epochs": {"type": "integer", "minimum": 0},
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "epoch": {"type": "integer", "minimum": 1},
                    "train": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                    "valid": {"type": "object"},
                },
                "required": ["epoch", "train", "valid"],
            },
        },
        "epoch_seconds": {
            "description": "per epoch: the wall time of its training pass and of its validation, in seconds",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"train": {"type": "number", "minimum": 0}, "valid": {"type": "number", "minimum": 0}},
                "additionalProperties": False,
            },
        },
        "predictions": {
            "description": "the test split, in split order: sample ids, the model's answers, and the labels unless "
            "they are withheld (then data.labels_sha256 holds their digest)",
            "type": "object",
            "properties": {
                "ids": {"type": "array", "items": {"type": "string"}},
                "predictions": {"type": "array", "minItems": 1},
                "labels": {"type": "array"},
            },
            "required": ["ids", "predictions"],
            "additionalProperties": False,
        },
        "hparams": {"type": "object"},
        "method_info": {
            "type": "object",
            "properties": {
                "paper": {"type": "string"},
                "url": {"type": "string"},
                "plugin": {"type": "string"},
                "distribution": {"type": "string"},
                "metrics": {
                    "description": "the only metrics the method reports (Method.metrics): `metrics` holds these",
                    "type": "array",
                    "items": {"enum": list(METRICS)},
                    "minItems": 1,
                },
                "reported": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "dataset": {"type": "string"},
                            "source": {"type": "string"},
                            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
                        },
                        "required": ["dataset", "source", "metrics"],
                    },
                },
            },
        },
        "versions": {
            "description": "msabench, the plugin distributions the method comes from, and the runtime "
            f"({', '.join(RUNTIME)})",
            "type": "object",
            "additionalProperties": {"type": "string"},
            "required": ["msabench"],
        },
        "hardware": {"type": "object", "properties": {"device": {"type": "string"}}, "required": ["device"]},
        "data": {
            "type": "object",
            "properties": {
                "files": {"type": "object", "additionalProperties": {"anyOf": [SHA256, {"type": "null"}]}},
                "verified": {"type": "boolean"},
                "synthetic": {"type": "boolean"},
                "labels_sha256": {
                    "description": "digest of the withheld test labels: SHA-256 of their JSON list, compact "
                    "(separators ',' and ':'), in the order of predictions.ids",
                    **SHA256,
                },
            },
        },
        "wall_time_s": {"type": "number", "minimum": 0},
        "peak_memory_mb": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "parameters": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "stages": {
            "description": "per modality, the earlier run (stage) its encoder started from",
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "method": {"type": "string"},
                    "result": {"type": "string"},
                    "sha256": SHA256,
                    "checkpoint": {"type": "string"},
                },
                "required": ["method", "result", "sha256"],
            },
        },
        "tuned": {
            "description": "empty, or the sweep that chose these hyper-parameters on the validation split",
            "anyOf": [
                {"type": "object", "maxProperties": 0},
                {
                    "type": "object",
                    "properties": {
                        "sweep": {"type": "string"},
                        "summary": {"type": "string"},
                        "selection": {
                            "type": "object",
                            "properties": {"split": {"const": "valid"}},
                            "required": ["split", "key", "mode"],
                        },
                        "chosen": {"type": "object"},
                    },
                    "required": ["sweep", "summary", "selection", "chosen"],
                },
            ],
        },
        "request": {
            "description": "what produced the run: the equivalent command, the msabench git commit (null outside a "
            "checkout), a UTC ISO 8601 timestamp and the CPU thread count",
            "type": "object",
            "properties": {
                "command": {"description": "an msabench command", "type": "string", "pattern": "^msabench "},
                "commit": {
                    "description": "a git commit id (hex) or null",
                    "anyOf": [{"type": "string", "pattern": "^[0-9a-f]{7,64}$"}, {"type": "null"}],
                },
                "timestamp": {
                    "description": "a UTC time in ISO 8601, e.g. 2026-11-23T09:30:00Z",
                    "type": "string",
                    "format": "date-time",
                    "pattern": TIMESTAMP,
                },
                "threads": {"type": "integer", "minimum": 1},
            },
            "required": ["command", "commit", "timestamp", "threads"],
        },
    }
    if missing := [name for name in stored if name not in properties]:
        raise AssertionError(f"RunResult fields without a schema: {missing}")
    conditions: list[dict[str, Any]] = [
        {
            "description": "from format version 2, every result records its request",
            "if": {"properties": {"schema": {"minimum": 2}}, "required": ["schema"]},
            "then": {"required": ["request"]},
        },
        {
            "description": "predictions.labels, or data.labels_sha256 where the labels are withheld",
            "anyOf": [
                {"properties": {"predictions": {"required": ["labels"]}}},
                {"properties": {"data": {"required": ["labels_sha256"]}}, "required": ["data"]},
            ],
        },
    ]
    for family, columns in FAMILIES.items():
        conditions.append(
            {
                "description": f"the {family} family's metrics (all of them, or those method_info.metrics lists)",
                "if": {"properties": {"task": {"properties": {"family": {"const": family}}}}},
                "then": {
                    "properties": {"metrics": {"propertyNames": {"enum": list(columns)}}},
                    "if": {"properties": {"method_info": {"required": ["metrics"]}}, "required": ["method_info"]},
                    "else": {"properties": {"metrics": {"required": list(columns)}}},
                },
            }
        )
    return {
        "$schema": DIALECT,
        "title": "msabench result",
        "description": "One training run of one method on one dataset with one seed (msabench.results.RunResult). "
        f"Format versions 1..{version}: version 2 requires `request`.",
        "type": "object",
        "properties": properties,
        "required": [name for name in stored if name not in ("request", "epoch_seconds")],
        "additionalProperties": False,
        "allOf": conditions,
        "$defs": {name: metric_schema(name) for name in METRICS},
    }


def render(version: int = SCHEMA) -> str:
    """`json_schema` as the text of ``docs/result.schema.json``."""
    return json.dumps(json_schema(version), indent=1, ensure_ascii=False) + "\n"


def validate(data: Any, *, version: int = SCHEMA) -> list[str]:
    """The problems of a result (a parsed JSON object) against the format of `version`, one line each, in a stable
    order; empty when it is valid. A format newer than `version` is one problem: nothing else is checked."""
    if not isinstance(data, dict):
        return [f"a result is a JSON object, not {type(data).__name__}"]
    found = data.get("schema")
    if isinstance(found, int) and not isinstance(found, bool) and found > version:
        return [
            f"schema: format version {found} is newer than this msabench reads (1..{version}): upgrade msabench "
            "to verify or render it"
        ]
    validator = Draft202012Validator(json_schema(version))
    problems = [_line(error) for error in sorted(validator.iter_errors(data), key=_order)]
    problems += _consistency(data)
    return list(dict.fromkeys(problems))


def load(path: str | Path) -> tuple[Any, list[str]]:
    """(the parsed JSON or None, problems reading it): NaN and Infinity are not JSON and count as problems."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON (an undefined metric is written as null)")

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse), []
    except (OSError, UnicodeDecodeError) as error:
        return None, [f"cannot read the file: {error}"]
    except ValueError as error:
        return None, [f"not valid JSON: {error}"]


def labels_digest(labels: list) -> str:
    """The digest a result stores as ``data.labels_sha256`` when it withholds its test labels: SHA-256 of the
    labels' JSON list, compact, in the order of ``predictions.ids``."""
    return hashlib.sha256(json.dumps(labels, separators=(",", ":")).encode()).hexdigest()


def _consistency(data: dict[str, Any]) -> list[str]:
    """What the schema cannot say: arrays of one split agree in length, the selected epoch lies in the history."""
    problems = []
    predictions = data.get("predictions")
    if isinstance(predictions, dict):
        sizes = {key: len(value) for key, value in predictions.items() if isinstance(value, list)}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{key} {size}" for key, size in sizes.items())
            problems.append(f"predictions: the arrays disagree in length ({shown}); each holds one entry per sample")
    epochs, best, history = data.get("epochs"), data.get("best_epoch"), data.get("history")
    if isinstance(epochs, int) and isinstance(best, int) and best > epochs:
        problems.append(f"best_epoch: {best} is after the last epoch ({epochs})")
    if isinstance(history, list) and history and isinstance(epochs, int) and len(history) != epochs:
        problems.append(f"history: {len(history)} entries for {epochs} epochs")
    declared = (data.get("method_info") or {}).get("metrics") if isinstance(data.get("method_info"), dict) else None
    if isinstance(declared, list) and isinstance(data.get("metrics"), dict) and set(data["metrics"]) != set(declared):
        problems.append(
            f"metrics: holds {', '.join(data['metrics']) or 'nothing'}; the method reports exactly "
            f"{', '.join(map(str, declared))} (method_info.metrics)"
        )
    for name in ("metrics", "valid_metrics"):
        values = data.get(name)
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, float) and not math.isfinite(value):
                    problems.append(f"{name}.{key}: {value} is not a JSON number (write null where undefined)")
    return problems


def _order(error) -> tuple:
    return (tuple(str(part) for part in error.absolute_path), error.validator, error.message)


def _line(error) -> str:
    """One line: where (a dotted path) and what, without the offending value when it is large."""
    where = ".".join(str(part) for part in error.absolute_path) or "(the result)"
    if error.validator in ("anyOf", "oneOf", "if", "then") and error.schema.get("description"):
        message = f"needs {error.schema['description']}"
    elif error.validator == "anyOf" and error.parent is not None and error.parent.schema.get("description"):
        message = f"needs {error.parent.schema['description']}"
    elif error.validator in ("anyOf", "oneOf"):
        message = f"{_short(error.instance)} matches none of the allowed forms"
    elif error.validator == "enum" and error.path == error.relative_path and len(error.absolute_path) == 1:
        message = f"{_short(error.instance)} is not one of its family's metrics ({', '.join(error.validator_value)})"
    elif error.validator == "pattern":
        message = f"{_short(error.instance)} is not {error.schema.get('description', 'of the expected form')}"
    elif error.validator == "type" and error.instance is None:
        message = "null where a number is required (only an undefined Corr, Acc-2_non0 or F1_non0 may be null)"
    elif error.validator in ("minimum", "maximum"):
        message = f"{error.instance} is out of range ({error.message.split(' is ', 1)[1]})"
    else:
        message = error.message
    text = f"{where}: {message}"
    text = " ".join(text.split())
    return text if len(text) <= 240 else text[:237] + "..."


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_result(data: dict[str, Any]) -> tuple[RunResult, dict[str, Any] | None]:
    """A valid result's `RunResult` and its ``request`` (None where it records none). Until `RunResult` holds the
    request itself, the request is kept beside it."""
    known = {f.name for f in fields(RunResult)}
    request = data.get("request")
    return RunResult.from_dict({key: value for key, value in data.items() if key in known}), request


def read_valid(
    root: str | os.PathLike[str],
) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, list[str]]]]:
    """The result files under `root` that validate, as (path, result), and those that do not, as (path, problems):
    a tampered or corrupt result is listed, never rendered, plotted, exported or ranked."""
    valid, invalid = [], []
    for path in result_files(root):
        data, problems = load(path)
        problems = problems or validate(data)
        if problems:
            invalid.append((path, problems))
        else:
            valid.append((path, to_result(data)[0]))
    return valid, invalid
