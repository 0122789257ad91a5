"""Multi-stage methods (`Stage`): one `msabench run` runs or reuses each stage run of the same seed, dataset, data
options and protocol, then the final stage from their checkpoints; `--set STAGE:SECTION.KEY` changes one stage;
the catalog refuses stages it cannot run. On the host's image-text fakes: tiny-staged starts its text encoder from
tiny-text and its image encoder from tiny-image."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from fakes import TINY_IMAGE, TINY_STAGED, TINY_TEXT, ImageTextPlugin, Plugin, write_tweets
from msabench import Protocol, Stage
from msabench.cli import cli
from msabench_core.language import TINY_CONFIG as BERT_TINY
from test_catalog import catalog_with, plugin

PROTOCOL = Protocol(max_epochs=2)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def catalog(monkeypatch):
    found = catalog_with(Plugin(), ImageTextPlugin())
    monkeypatch.setattr("msabench.cli.options.load_catalog", lambda: found)
    return found


@pytest.fixture()
def tweets(tmp_path):
    return write_tweets(tmp_path / "tweets", n=30)


def run(tweets, *extra, method="tiny-staged"):
    args = ["run", "-m", method, "-d", "folder-tweets", "--data-root", str(tweets), "--seeds", "1111"]
    args += ["--max-epochs", str(PROTOCOL.max_epochs), "--no-progress", "-q", *extra]
    return CliRunner().invoke(cli, args)


def rows(tmp_path):
    """Result files under ./results, relative, sorted."""
    return sorted(str(path.relative_to(tmp_path / "results")) for path in (tmp_path / "results").rglob("seed-*.json"))


def test_one_command_runs_both_stages_then_the_final_stage_from_their_checkpoints(tmp_path, catalog, tweets):
    done = run(tweets)
    assert done.exit_code == 0, done.output
    protocol = PROTOCOL.id
    assert rows(tmp_path) == [
        f"folder-tweets/tiny-image/{protocol}/seed-1111.json",
        f"folder-tweets/tiny-staged/{protocol}/seed-1111.json",
        f"folder-tweets/tiny-text/{protocol}/seed-1111.json",
    ]
    final = json.loads((tmp_path / f"results/folder-tweets/tiny-staged/{protocol}/seed-1111.json").read_text())
    for modality, stage in (("text", "tiny-text"), ("image", "tiny-image")):
        stage_file = f"results/folder-tweets/{stage}/{protocol}/seed-1111.json"
        recorded = final["stages"][modality]
        assert recorded["method"] == stage and recorded["result"] == stage_file
        assert recorded["sha256"] == hashlib.sha256((tmp_path / stage_file).read_bytes()).hexdigest()
        assert final["hparams"][modality]["init_from"] == stage_file.replace(".json", ".pt")
        started = final["data"]["encoders"][modality]["fingerprint"]["init_from"]
        assert started["path"] == str((tmp_path / stage_file.replace(".json", ".pt")).resolve())
        assert started["method"] == stage and started["seed"] == 1111
        stage_result = json.loads((tmp_path / stage_file).read_text())
        assert stage_result["stages"] == {} and stage_result["variant"] == ""  # an ordinary run of its own
        assert len(stage_result["predictions"]["ids"]) == len(final["predictions"]["ids"])  # tested once, own file
    assert final["variant"] == "" and final["protocol"]["id"] == protocol


def test_a_second_identical_command_skips_every_run(tmp_path, catalog, tweets):
    assert run(tweets).exit_code == 0
    before = {path: (tmp_path / "results" / path).read_bytes() for path in rows(tmp_path)}
    again = run(tweets)
    assert again.exit_code == 0, again.output
    assert again.output.count("done already") == 3
    assert "stage tiny-text: done already" in again.output and "stage tiny-image: done already" in again.output
    assert {path: (tmp_path / "results" / path).read_bytes() for path in rows(tmp_path)} == before


def test_a_stage_qualified_set_makes_its_own_stage_row_and_the_final_stage_uses_it(tmp_path, catalog, tweets):
    assert run(tweets).exit_code == 0
    changed = run(tweets, "--set", "tiny-text:train.lr=0.003")
    assert changed.exit_code == 0, changed.output
    protocol = PROTOCOL.id
    assert "stage tiny-image: done already" in changed.output  # the unchanged stage is reused
    assert f"folder-tweets/tiny-text+train.lr=0.003/{protocol}/seed-1111.json" in rows(tmp_path)
    final_row = "tiny-staged+tiny-text_train.lr=0.003"
    (final_file,) = (tmp_path / "results/folder-tweets").glob(f"{final_row}*/{protocol}/seed-1111.json")
    final = json.loads(final_file.read_text())
    assert final["variant"] == "tiny-text:train.lr=0.003"
    stage_file = f"results/folder-tweets/tiny-text+train.lr=0.003/{protocol}/seed-1111.json"
    assert final["stages"]["text"]["result"] == stage_file
    assert final["hparams"]["text"]["init_from"] == stage_file.replace(".json", ".pt")
    stage = json.loads((tmp_path / stage_file).read_text())
    assert stage["hparams"]["train"]["lr"] == 0.003 and stage["variant"] == "train.lr=0.003"
    unchanged = json.loads((tmp_path / f"results/folder-tweets/tiny-staged/{protocol}/seed-1111.json").read_text())
    assert unchanged["stages"]["image"] == final["stages"]["image"]  # both finals start from the same image stage


def test_an_explicit_init_from_replaces_its_stage(tmp_path, catalog, tweets):
    done = run(tweets, "--set", "text.init_from=null", "--set", f"text.config={json.dumps(BERT_TINY)}")
    assert done.exit_code == 0, done.output
    names = {path.split("/")[1].split("+")[0] for path in rows(tmp_path)}
    assert names == {"tiny-image", "tiny-staged"}  # no tiny-text run
    (final_file,) = (tmp_path / "results/folder-tweets").glob("tiny-staged+*/*/seed-1111.json")
    final = json.loads(final_file.read_text())
    assert set(final["stages"]) == {"image"} and final["hparams"]["text"]["init_from"] is None
    assert (
        "text.init_from=null" in final["variant"]
        and "init_from" not in final["data"]["encoders"]["text"]["fingerprint"]
    )


def test_a_retrained_stage_makes_the_final_result_stale(tmp_path, catalog, tweets):
    assert run(tweets).exit_code == 0
    assert run(tweets, "--overwrite", method="tiny-text").exit_code == 0  # stage 1 alone, trained again
    stale = run(tweets)
    assert stale.exit_code != 0
    assert "holds a result of another run (text stage:" in stale.output and "--overwrite" in stale.output


def test_a_stage_without_its_checkpoint_is_refused_unless_the_final_stage_is_done(tmp_path, catalog, tweets):
    assert run(tweets, "--no-checkpoints", method="tiny-text").exit_code == 0
    missing = run(tweets)
    assert missing.exit_code != 0
    assert "seed 1111, stage tiny-text:" in missing.output and "has no checkpoint seed-1111.pt" in missing.output
    assert run(tweets, "--overwrite").exit_code == 0
    for checkpoint in (tmp_path / "results").rglob("seed-1111.pt"):  # as in a fresh clone of committed results
        checkpoint.unlink()
    again = run(tweets)
    assert again.exit_code == 0 and again.output.count("done already") == 3


def test_a_final_stage_without_checkpoints_still_keeps_the_stage_checkpoints(tmp_path, catalog, tweets):
    assert run(tweets, "--no-checkpoints").exit_code == 0
    checkpoints = sorted(path.parent.parent.name for path in (tmp_path / "results").rglob("seed-1111.pt"))
    assert checkpoints == ["tiny-image", "tiny-text"]


@pytest.mark.parametrize(
    "flag, message",
    [
        (
            "tiny-frozen:train.lr=1",
            "'tiny-frozen' is not a stage of tiny-staged (its stages are tiny-text, tiny-image)",
        ),
        ("tiny-text:lr=1", "--set tiny-text:lr: expected SECTION.KEY, e.g. tiny-text:train.lr."),
        (
            "tiny-text:train.lr=-1",
            "stage tiny-text (its settings: --set tiny-text:SECTION.KEY=VALUE): method "
            "'tiny-text': train.lr must be a number > 0; got -1.",
        ),
        ("tiny-text:fusion.nope=1", "got an unexpected keyword argument 'nope'"),
    ],
)
def test_bad_stage_settings_are_one_line_errors_before_data_loads(tmp_path, catalog, flag, message):
    refused = run(tmp_path / "no-such-folder", "--set", flag)
    assert refused.exit_code != 0 and message in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "results").exists()


def test_a_qualified_set_on_a_method_without_stages_is_refused(tmp_path, catalog):
    refused = run(tmp_path, "--set", "tiny-text:train.lr=1", method="tiny-frozen")
    assert refused.exit_code != 0 and "it has no stages" in refused.output


def test_a_stage_replaced_by_init_from_cannot_be_set(tmp_path, catalog):
    refused = run(tmp_path, "--set", "text.init_from=null", "--set", "tiny-text:train.lr=1")
    assert refused.exit_code != 0 and "stage tiny-text does not run: --set text.init_from replaces it" in refused.output


def test_swapping_a_staged_encoder_drops_its_stage():
    swapped = TINY_STAGED.with_components({"text": "mean-linear"})
    assert swapped.stages == (Stage("tiny-image", "image"),)


@pytest.mark.parametrize(
    "stages, message",
    [
        ((Stage("no-such-method", "text"),), "Unknown method 'no-such-method'"),
        ((Stage("tiny-text", "audio"),), "starts its 'audio' encoder, but the method encodes text, image"),
        ((Stage("tiny-image", "text"),), "stage 'tiny-image' encodes text with None"),
        ((Stage("tiny-text", "text"), Stage("tiny-text", "text")), "two stages start its 'text' encoder"),
        ((Stage("tiny-staged", "text"),), "stages of stages are not supported"),
    ],
)
def test_the_catalog_refuses_stages_it_cannot_run(stages, message):
    broken = replace(TINY_STAGED, name="tiny-broken", stages=stages)
    found = catalog_with(Plugin(), ImageTextPlugin(), plugin(methods=[broken]))
    with pytest.raises(Exception, match="tiny-broken") as error:
        found.methods["tiny-broken"]
    assert message in str(error.value)
    assert "tiny-staged" in found.methods and TINY_TEXT.name in found.methods and TINY_IMAGE.name in found.methods


def test_a_staged_encoder_is_built_as_its_stage_built_it(tmp_path, catalog, tweets):
    done = run(tweets, "--set", "tiny-text:text.max_length=24")
    assert done.exit_code == 0, done.output
    (final_file,) = (tmp_path / "results/folder-tweets").glob("tiny-staged+*/*/seed-1111.json")
    final = json.loads(final_file.read_text())
    assert final["variant"] == "tiny-text:text.max_length=24"
    assert final["hparams"]["text"]["max_length"] == 24 and final["hparams"]["text"]["freeze"] is True
    assert final["data"]["encoders"]["text"]["fingerprint"]["max_length"] == 24
