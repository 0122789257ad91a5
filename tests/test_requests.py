"""Every value checked before training, systematically: each option of `msabench run` and each hyper-parameter of
every installed method gets an out-of-range value, and each must be a one-line error from the plan step, before any
data loads. A new option or hyper-parameter is covered without a new test (an option this file has no bad value for
fails the first test, naming it)."""

from __future__ import annotations

import collections.abc
import math
import types
import typing

import click
import pytest
from click.testing import CliRunner

import msabench
import msabench.plugins
from fakes import TinyData
from msabench.api import Request, load_catalog, plan
from msabench.cli import cli
from msabench.cli.run import command as run_command
from msabench.hparams import Range, declared
from msabench.settings import SETTINGS

# An out-of-range value per option whose type does not give one (the type gives int, float and choice options theirs).
BAD = {
    "method": ["nope"],
    "dataset": ["nope"],
    "seeds": ["x", "", "-1", "1,1", "4294967296"],
    "data_root": ["{file}"],
    "results_dir": ["{file}"],
    "boards_dir": ["{file}"],
    "device": ["banana", "cpu:3", "cuda:99"],
    "encoders": ["text", "text=nope", "image=mean-linear"],
    "objective": ["nope", "cross-entropy"],
    "sets": ["lr=1", "fusion.nope=1", "nope:train.lr=1", "train.lr=-1"],
    "data_options": ["colour=red", "train_fraction=2", "train_fraction_seed=3"],
    "tuned": ["{missing}"],
}
FLAGS_AND_OUTPUT = {"no_verify", "overwrite", "progress", "checkpoints", "quiet", "dry_run", "help"}


def typed_bad_values(option: click.Option) -> list[str]:
    kind = option.type
    if isinstance(kind, click.Choice):
        return ["nope"]
    if kind is click.INT or isinstance(kind, click.IntRange):
        return ["0", "-1", "2.5", "x"]
    if kind is click.FLOAT or isinstance(kind, click.FloatRange):
        return ["nan", "-1", "x"]
    return []


def cases() -> list[tuple[str, str]]:
    found = []
    for option in run_command.params:
        if not isinstance(option, click.Option) or option.is_flag or option.name in FLAGS_AND_OUTPUT:
            continue
        values = BAD.get(option.name) or typed_bad_values(option)
        found += [(option.opts[0], value) for value in values] or [(option.opts[0], "<no bad value>")]
    return found


@pytest.fixture
def unloadable(fakes, monkeypatch, tmp_path):
    """The fakes, whose tiny data must not load (every check comes first), and a file where a folder is expected."""

    def never(self, *args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(TinyData, "load", never)
    (tmp_path / "a-file").write_text("")


@pytest.mark.parametrize(("flag", "value"), cases())
def test_every_run_option_refuses_a_bad_value_in_one_line_before_data_loads(unloadable, flag, value):
    assert value != "<no bad value>", f"add an out-of-range value for {flag} to BAD in {__file__}"
    value = value.format(file="a-file", missing="missing/summary.json")
    args = ["run", "--dry-run", "-m", "tiny", "-d", "tiny-data", "--seeds", "1"]
    args = (
        [*args, flag, value]
        if flag not in ("--method", "--dataset", "--seeds")
        else [a if a != {"--method": "tiny", "--dataset": "tiny-data", "--seeds": "1"}[flag] else value for a in args]
    )
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code != 0, f"{flag} {value!r} was accepted:\n{outcome.output}"
    errors = [line for line in outcome.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in outcome.output, outcome.output


def bad_hyper_parameter(annotation: typing.Any, default: typing.Any, name: str) -> list[typing.Any]:
    """Values the declaration refuses: a fraction for a count, NaN for a float, a number outside a Range..."""
    ranges = []
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        ranges = [extra for extra in extras if isinstance(extra, Range)]
    if typing.get_origin(annotation) is typing.Literal:
        return ["not-one-of-them"]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = [a for a in typing.get_args(annotation) if a is not type(None)] if union else [annotation]
    if len(options) != 1:
        return []
    kind = options[0]
    if typing.get_origin(kind) in (list, tuple, collections.abc.Sequence) and typing.get_args(kind)[:1] == (int,):
        return ["x", [2.5]] + ([[0]] if isinstance(default, list | tuple) and default and default[0] >= 1 else [])
    if kind is int:
        return [2.5] + ([0] if isinstance(default, int) and default >= 1 and not ranges else [])
    if kind is float:
        above = [r.high + 1 for r in ranges if r.high is not None]
        probability = name in ("p", "dropout") or name.endswith("_dropout") or name.startswith("dropout_")
        return [math.inf, *above, *([1.5] if probability and not ranges else [])]
    if kind is bool:
        return ["yes"]
    return []


def dataset_for(catalog, method) -> str | None:
    """A synthetic dataset the method plans on as registered."""
    for dataset in ("synthetic-mosi", "synthetic-sims", "synthetic-mosi-aligned", "synthetic-imagetext"):
        try:
            plan(Request(method, dataset), catalog=catalog)
            return dataset
        except msabench.MsabenchError:
            continue
    return None


def test_every_hyper_parameter_of_every_installed_method_refuses_a_bad_value_at_the_plan_step():
    catalog = load_catalog()
    checked, unchecked, refused_late = 0, [], []
    for name in catalog.methods:
        method = catalog.methods[name]
        dataset = dataset_for(catalog, name)
        if dataset is None:
            unchecked.append(f"{name} (plans on no synthetic dataset)")
            continue
        recipe = method.for_dataset(catalog.datasets[dataset])
        parts = {modality: catalog.encoders[encoder] for modality, encoder in recipe.encoders.items()}
        parts |= {"fusion": catalog.fusions[recipe.fusion], "objective": catalog.objectives[recipe.objective]}
        for section, values in recipe.hparams_for(catalog.datasets[dataset]).items():
            for key, value in values.items():
                if section == "train":
                    setting = SETTINGS[key]
                    bad = {"int": [2.5, -1], "float": [math.nan, -1.0], "choice": ["nope"], "groups": ["x"]}[
                        setting.kind
                    ]
                else:
                    annotation, default = declared(parts[section]).get(key, (None, None))
                    bad = bad_hyper_parameter(annotation, default, key)
                if not bad:
                    unchecked.append(f"{name}: {section}.{key}")
                    continue
                for value in bad:
                    try:
                        plan(Request(name, dataset, sets={f"{section}.{key}": value}), catalog=catalog)
                    except msabench.MsabenchError as error:
                        assert "\n" not in str(error), str(error)
                    else:
                        refused_late.append(f"{name}: {section}.{key}={value!r}")
                    checked += 1
    assert refused_late == [], f"accepted at the plan step: {refused_late}"
    assert checked > 0
    # Untyped values (nested configs, paths, lists) are the constructors' to check; they are listed, not hidden.
    print(f"{checked} bad values refused; not typed, so left to their constructors: {len(unchecked)}")
