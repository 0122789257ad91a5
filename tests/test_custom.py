"""`mmsa-custom`: an MMSA-layout pickle of any dims, read through the MMSA loader's checks, its own dataset in results
and leaderboards (host fakes only)."""

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

import msabench_core
from fakes import Plugin
from msabench import Catalog, DataError, Method, RunResult, fit, get_plugin_manager
from msabench.protocol import Protocol
from msabench_core.custom import MMSACustom


def features(n, dims, rng, *, text_bert=False, unimodal=False, bound=3.0, classes=None):
    """One split in MMSA's layout with feature dims `dims` (text, audio, vision; None leaves a modality out)."""
    cue = rng.standard_normal(n).astype(np.float32)
    part = {"id": np.array([f"v{i}$_$0" for i in range(n)], dtype=object), "raw_text": ["words"] * n}
    for key, dim, steps in zip(("text", "audio", "vision"), dims, (6, 9, 4), strict=True):
        if dim is not None:
            part[key] = (rng.standard_normal((n, steps, dim)) + cue[:, None, None]).astype(np.float32)
            if key != "text":
                part[f"{key}_lengths"] = rng.integers(1, steps + 1, n).astype(np.int64)
    if text_bert:
        ids = rng.integers(5, 40, (n, 6)).astype(np.float64)
        part["text_bert"] = np.stack([ids, np.ones_like(ids), np.zeros_like(ids)], axis=1)
    part["regression_labels"] = np.clip(np.round(cue * bound / 2, 1), -bound, bound).astype(np.float32)
    if unimodal:
        for key in "TAV":
            part[f"regression_labels_{key}"] = part["regression_labels"].copy()
    if classes is not None:
        part["annotations"] = np.array([classes[int(c > 0) + int(c > 1)] for c in cue], dtype=object)
    return part


def write_features(path, dims=(7, 3, 11), sizes=(40, 12, 12), seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    raw = {s: features(n, dims, rng, **kwargs) for s, n in zip(("train", "valid", "test"), sizes, strict=True)}
    path.write_bytes(pickle.dumps(raw, protocol=4))
    return path


def test_any_dims_load_with_shapes_and_inputs_from_the_arrays(tmp_path):
    path = write_features(tmp_path / "feats.pkl", dims=(7, None, 11))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert MMSACustom(path=str(path)).name == f"custom-{digest[:12]}"  # before loading: the folder a plan shows
    data = MMSACustom(path=str(path)).load()
    assert data.name == f"custom-{digest[:12]}"
    assert data.task.family == "mosi" and data.task.label_range == (-3.0, 3.0)
    assert {key: spec.shape for key, spec in data.specs.items()} == {"text": (6, 7), "vision": (4, 11)}
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 40, "valid": 12, "test": 12}
    assert data.provenance["files"] == {"feats.pkl": digest} and data.provenance["verified"] is False
    assert data.provenance["path"] == "feats.pkl" and data.provenance["family"] == "mosi"  # no machine's path


def test_sha256_option_verifies_and_a_mismatch_is_refused(tmp_path):
    path = write_features(tmp_path / "feats.pkl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert MMSACustom(path=str(path), sha256=digest.upper()).load().provenance["verified"] is True
    with pytest.raises(DataError, match=f"has SHA-256 {digest}, but the published file has {'0' * 64}.*--no-verify"):
        MMSACustom(path=str(path), sha256="0" * 64).load()
    assert MMSACustom(path=str(path), sha256="0" * 64, verify=False).load().provenance["verified"] is False
    with pytest.raises(DataError, match="sha256=abc: expected the file's SHA-256, 64 hexadecimal digits"):
        MMSACustom(path=str(path), sha256="abc")


@pytest.mark.parametrize(
    ("family", "bound", "value", "message"),
    [
        ("mosi", 3.0, 3.5, r"train/regression_labels of row 2 \(id v2\$_\$0\) is 3.5, outside -3..3"),
        ("sims", 1.0, 1.5, r"train/regression_labels of row 2 \(id v2\$_\$0\) is 1.5, outside -1..1"),
    ],
)
def test_the_label_range_comes_from_the_family(tmp_path, family, bound, value, message):
    path = tmp_path / "feats.pkl"
    raw = pickle.loads(write_features(path, bound=bound).read_bytes())
    assert MMSACustom(path=str(path), family=family).load().task.label_range == (-bound, bound)
    raw["train"]["regression_labels"][2] = value
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match=message + ".*repair=true"):
        MMSACustom(path=str(path), family=family).load()
    repaired = MMSACustom(path=str(path), family=family, repair=True).load()
    assert repaired.splits["train"].tensors["label"][2].item() == bound
    assert repaired.provenance["repairs"] == {"train/regression_labels": 1}


def test_the_mmsa_loaders_checks_apply(tmp_path):
    path = tmp_path / "feats.pkl"
    raw = pickle.loads(write_features(path).read_bytes())
    raw["valid"]["audio"] = raw["valid"]["audio"][:, :, :2]
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match=r"valid/audio has shape \(12, 9, 2\), but train/audio has \(40, 9, 3\)"):
        MMSACustom(path=str(path)).load()
    raw = pickle.loads(write_features(path).read_bytes())
    del raw["test"]["vision_lengths"]
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match="test has no 'vision_lengths'"):
        MMSACustom(path=str(path)).load()
    raw = pickle.loads(write_features(path).read_bytes())
    raw["train"]["audio"][0, 0, 0] = -np.inf
    path.write_bytes(pickle.dumps(raw))
    assert MMSACustom(path=str(path)).load().provenance["nonfinite"] == {"train/audio": 1}


def test_the_restricted_unpickler_refuses_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": Payload()}))
    with pytest.raises(DataError, match="refused to load builtins.print.*nothing in it ran"):
        MMSACustom(path=str(path)).load()


def test_unimodal_labels_and_text_bert_come_along(tmp_path):
    path = write_features(tmp_path / "feats.pkl", text_bert=True, unimodal=True, bound=1.0)
    custom = MMSACustom(path=str(path), family="sims", tokenizer="bert-base-uncased")
    data = custom.load()
    assert custom.inputs == ("text_bert", "text", "audio", "vision")
    assert custom.labels == ("label", "label_T", "label_A", "label_V")
    assert {"label_T", "label_A", "label_V"} <= set(data.splits["valid"].tensors)
    largest = max(int(s.tensors["text_bert"][:, 0].max()) for s in data.splits.values())
    assert data.vocab_size == largest + 1 and data.specs["text_bert"].tokenizer == "bert-base-uncased"


def test_classification_from_annotations_with_named_classes(tmp_path):
    path = write_features(tmp_path / "feats.pkl", classes=("Negative", "Neutral", "Positive"))
    data = MMSACustom(path=str(path), family="classification").load()
    assert data.name == f"custom-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}-classification"
    assert data.task.kind == "classification" and data.task.classes == ("Negative", "Neutral", "Positive")
    raw = pickle.loads(path.read_bytes())
    expected = [("Negative", "Neutral", "Positive").index(a) for a in raw["train"]["annotations"]]
    assert data.splits["train"].tensors["label"].dtype == torch.int64
    assert data.splits["train"].tensors["label"].tolist() == expected
    ordered = MMSACustom(path=str(path), family="classification", classes="positive,negative,neutral").load()
    assert ordered.task.classes == ("positive", "negative", "neutral")
    assert ordered.splits["train"].tensors["label"].tolist() == [(i + 1) % 3 for i in expected]
    with pytest.raises(DataError, match=r"train/annotations holds 'Neutral', .*classes=A,B,C"):
        MMSACustom(path=str(path), family="classification", classes="negative,positive").load()


def test_classification_ids_are_checked_against_the_classes(tmp_path):
    path = tmp_path / "feats.pkl"
    raw = pickle.loads(write_features(path).read_bytes())
    for part in raw.values():
        part["classification_labels"] = (part["regression_labels"] > 0).astype(np.int64)
    path.write_bytes(pickle.dumps(raw))
    assert MMSACustom(path=str(path), family="classification").load().task.classes == ("0", "1")
    raw["valid"]["classification_labels"][3] = 2
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match=r"valid/classification_labels of row 3 \(id v3\$_\$0\) is 2, outside 0..1"):
        MMSACustom(path=str(path), family="classification", classes="neg,pos").load()
    raw["valid"]["classification_labels"] = raw["valid"]["classification_labels"] + 0.5
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match=r"valid/classification_labels of row 0 .* is 0.5; class ids are whole"):
        MMSACustom(path=str(path), family="classification", classes="neg,pos").load()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"family": "iemocap"}, "family=iemocap: expected one of mosi, sims, classification"),
        ({"classes": "a,b"}, "classes= names classification classes; family is mosi"),
        ({"family": "classification", "classes": "a,a"}, "give two or more distinct names"),
        ({"name": "My Feats"}, "name=My Feats: use a kebab-case name"),
        ({"hparams_from": "MOSI!"}, "hparams_from=MOSI!: use a kebab-case name"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(DataError, match=message):
        MMSACustom(**options)


def test_a_missing_path_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="pass --data-option path=FILE"):
        MMSACustom().load()
    with pytest.raises(DataError, match=r"path=.*nothing.pkl: no such file"):
        MMSACustom(path=str(tmp_path / "nothing.pkl")).load()


def test_run_trains_on_the_file_under_its_own_name(invoke, tmp_path):
    write_features(tmp_path / "feats.pkl", dims=(5, 2, 9))
    run = ["run", "-m", "tiny", "-d", "mmsa-custom", "--seeds", "1111", "--max-epochs", "2", "--no-progress"]
    outcome = invoke(*run, "--data-option", "path=feats.pkl", "--data-option", "name=mosi")
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results").rglob("seed-1111.json")
    assert path.relative_to(tmp_path / "results").parts[:2] == ("custom-mosi", "tiny")  # path and name: no variant
    result = RunResult.load(path)
    assert result.dataset == "custom-mosi" and result.epochs == 2 and result.data["verified"] is False
    assert result.parameters["trainable"] == (5 * 4 + 4) + (2 * 4 + 4) + (9 * 4 + 4) + (12 + 1)
    assert not (tmp_path / "leaderboards/mosi.md").exists()
    page = (tmp_path / "leaderboards/custom-mosi.md").read_text()
    assert page.startswith("# Leaderboard: custom-mosi") and "| tiny†   " in page
    again = invoke(*run, "--data-option", "path=feats.pkl", "--data-option", "name=mosi")
    assert "done already" in again.output  # the usual skip rule, under the file's name
    assert invoke("leaderboard", "--check").exit_code == 0


def test_run_names_an_input_the_file_lacks(invoke, tmp_path):
    write_features(tmp_path / "feats.pkl", dims=(5, None, 9))
    outcome = invoke("run", "-m", "tiny", "-d", "mmsa-custom", "--data-option", "path=feats.pkl", "--no-progress")
    assert outcome.exit_code == 1
    message = outcome.output.strip().splitlines()[-1]
    assert message.startswith(
        "Error: method 'tiny' encodes audio with encoder 'mean-linear', which reads input 'audio'"
    )
    assert "provides text, vision" in message


def test_hparams_from_chooses_whose_settings_apply(invoke, tmp_path):
    method = Method(
        name="tiny-borrowing",
        paper="A test method",
        encoders={"text": "mean-linear"},
        fusion="fake-concat",
        objective="l1",
        hparams={"train": {"lr": 1e-2}},
        overrides={"mosi": {"train": {"lr": 5e-3}}},
    )
    assert method.hparams_for(MMSACustom(hparams_from="mosi"))["train"]["lr"] == 5e-3
    assert method.hparams_for(MMSACustom(name="mosi"))["train"]["lr"] == 1e-2  # its name is custom-mosi
    write_features(tmp_path / "feats.pkl")
    outcome = invoke("run", "-m", "tiny", "-d", "mmsa-custom", "--data-option", "path=feats.pkl",
                     "--data-option", "hparams_from=mosii")  # fmt: skip
    assert outcome.exit_code == 1
    assert "takes its hyper-parameters from 'mosii', which is neither an installed dataset" in outcome.output
    assert "Did you mean: mosi" in outcome.output


def test_fit_on_a_classification_file(tmp_path):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="fakes")
    pm.register(msabench_core, name="core")
    catalog = Catalog.from_plugins(pm)
    method = Method(
        name="tiny-classes",
        paper="A test method",
        encoders={"audio": "mean-linear", "vision": "mean-linear"},
        fusion="fake-concat",
        objective="cross-entropy",
        hparams={"train": {"lr": 1e-2, "batch_size": 8}},
        tasks=("classification",),
    )
    path = write_features(tmp_path / "feats.pkl", classes=("neg", "neu", "pos"))
    data = MMSACustom(path=str(path), family="classification", name="three").load()
    result = fit(method, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=3))
    assert result.dataset == "custom-three" and result.task == {
        "kind": "classification",
        "family": "classification",
        "classes": ["neg", "neu", "pos"],
    }
    assert set(result.metrics) == {"Acc", "F1_weighted", "F1_macro"}
    assert len(result.predictions["ids"]) == 12 and set(result.predictions["predictions"]) <= {0, 1, 2}
    json.dumps(result.to_dict(), allow_nan=False)
