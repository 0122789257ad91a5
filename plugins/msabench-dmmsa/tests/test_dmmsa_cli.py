"""`msabench run --method dmmsa --dataset ch-sims` end to end, on a small pickle in MMSA's CH-SIMS layout."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never touch the hub

import numpy as np
import pytest
from click.testing import CliRunner

import msabench_dmmsa
from msabench import Catalog, CatalogError, Fusion, Method, get_plugin_manager, hookimpl, write_pickle
from msabench.cli import cli

SIZES = {"train": 24, "valid": 8, "test": 8}
LENGTHS = {"text": 8, "audio": 10, "vision": 6}  # CH-SIMS has 39/400/55; the loader checks only the feature dims
DIMS = {"text": 768, "audio": 33, "vision": 709}
TINY = {
    "text.random_init": "true",
    "text.hidden_size": "16",
    "text.layers": "1",
    "text.heads": "2",
    "text.intermediate_size": "32",
    "audio.d_model": "8",
    "audio.heads": "2",
    "audio.feedforward": "16",
    "vision.d_model": "8",
    "vision.heads": "2",
    "vision.feedforward": "16",
    "fusion.proj_dim": "8",
    "fusion.hidden": "[16, 8]",
    "fusion.unimodal_hidden": "[4]",
    "train.batch_size": "8",
}


def write_sims(root):
    """A CH-SIMS-shaped pickle (MMSA's keys, dims 768/33/709, unimodal labels) at SIMS/Processed/unaligned_39.pkl."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in SIZES.items():
        length = LENGTHS["text"]
        text_lengths = rng.integers(3, length + 1, n)
        mask = (np.arange(length)[None, :] < text_lengths[:, None]).astype(np.float64)
        ids = rng.integers(672, 8000, (n, length)) * mask
        ids[:, 0] = 101  # [CLS]
        ids[np.arange(n), text_lengths - 1] = 102  # [SEP]
        labels = {key: np.round(rng.uniform(-1, 1, n) * 5) / 5 for key in ("", "_T", "_A", "_V")}
        data[split] = {
            "id": np.array([f"video_{i:04d}$_${i % 4}" for i in range(n)], dtype=object),
            "raw_text": np.array(["测试"] * n, dtype=object),
            "text_bert": np.stack([ids, mask, np.zeros_like(ids)], axis=1),
            "text": rng.standard_normal((n, length, DIMS["text"])).astype(np.float32),
            "audio": rng.standard_normal((n, LENGTHS["audio"], DIMS["audio"])).astype(np.float32),
            "vision": rng.standard_normal((n, LENGTHS["vision"], DIMS["vision"])).astype(np.float32),
            "audio_lengths": rng.integers(2, LENGTHS["audio"] + 1, n),
            "vision_lengths": rng.integers(2, LENGTHS["vision"] + 1, n),
            **{f"regression_labels{key}": value.astype(np.float32) for key, value in labels.items()},
            "classification_labels": (np.sign(labels[""]) + 1).astype(np.float32),
        }
    write_pickle(root / "SIMS" / "Processed" / "unaligned_39.pkl", data)


def run(tmp_path, *extra, tiny=TINY):
    sets = [arg for key, value in tiny.items() for arg in ("--set", f"{key}={value}")]
    args = [
        "run",
        "--method",
        "dmmsa",
        "--dataset",
        "ch-sims",
        "--data-root",
        str(tmp_path / "data"),
        "--no-verify",
        "--seeds",
        "1111",
    ]
    args += [
        "--max-epochs",
        "3",
        "--results",
        str(tmp_path / "results"),
        "--leaderboards",
        str(tmp_path / "boards"),
        "--no-progress",
        "--no-checkpoints",
        "-q",
    ]
    return CliRunner().invoke(cli, [*args, *sets, *extra])


def test_dmmsa_runs_on_a_ch_sims_pickle_and_logs_its_terms_and_weights(tmp_path):
    write_sims(tmp_path / "data")
    outcome = run(tmp_path)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "ch-sims").rglob("seed-1111.json")
    result = json.loads(path.read_text())
    assert result["method"] == "dmmsa" and result["data"]["verified"] is False
    assert result["protocol"]["id"] == "mmsa-1+max_epochs=3" and result["epochs"] == 3
    assert result["hparams"]["train"]["lr_groups"] == {"encoders.text": 1e-5}  # CH-SIMS: the paper's fine-tuning rate
    history = result["history"]
    assert len(history) == 3
    assert all(set(epoch["train"]) == {"total", "msr", "msc", "uni", "cl"} for epoch in history)
    assert (
        history[0]["lambda"] == history[1]["lambda"] == {"uni": 0.5, "cl": 0.5}
    )  # equal at the start; epoch 1 is the reference
    ratios = {
        k: history[1]["train"][k] / history[0]["train"][k] for k in ("uni", "cl")
    }  # GDWG by hand, from the logged losses
    assert history[2]["lambda"]["uni"] == pytest.approx(1 / (1 + np.exp((ratios["cl"] - ratios["uni"]) / 2)), rel=1e-9)
    assert history[2]["lambda"]["uni"] + history[2]["lambda"]["cl"] == pytest.approx(1.0)
    assert set(result["metrics"]) == {"Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"}
    maes = [epoch["valid"]["MAE"] for epoch in history]
    assert result["best_epoch"] == 1 + maes.index(min(maes))  # selected on validation MAE
    board = (tmp_path / "boards" / "ch-sims.md").read_text()
    assert "| dmmsa [" in board and "text.random_init=true" in board and "Liang et al., Appl. Sci. 2025" in board


def test_missing_bert_checkpoint_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("MSABENCH_MODELS", raising=False)
    write_sims(tmp_path / "data")
    outcome = run(tmp_path, "--set", "text.random_init=false", "--max-epochs", "1")
    assert outcome.exit_code == 1
    assert "Error: encoder 'bert-text': cannot load the model 'bert-base-chinese'" in outcome.output
    assert "--set text.pretrained=DIR" in outcome.output and "Traceback" not in outcome.output


def test_cpu_path_swaps_bert_for_the_text_features(tmp_path):
    write_sims(tmp_path / "data")
    tiny = {**{k: v for k, v in TINY.items() if not k.startswith("text.")}, "text.d_model": "8", "text.heads": "2"}
    outcome = run(tmp_path, "--encoder", "text=transformer-seq", "--max-epochs", "1", tiny=tiny)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "ch-sims").rglob("seed-1111.json")
    result = json.loads(path.read_text())
    assert result["method_info"]["encoders"]["text"] == "transformer-seq"
    assert result["hparams"]["train"]["lr_groups"] == {}  # BERT's fine-tuning rate does not follow the swap


class PlainFusion(Fusion):
    """Concatenation into a linear layer: produces only a prediction."""

    name = "plain-concat"

    def __init__(self, in_dims, task):
        super().__init__(in_dims, task)
        import torch

        self.linear = torch.nn.Linear(sum(in_dims.values()), task.out_dim)

    def forward(self, features, lengths):
        import torch

        return {"prediction": self.linear(torch.cat(list(features.values()), -1))}


class PlainPlugin:
    @hookimpl
    def register_fusions(register):
        register(PlainFusion)

    @hookimpl
    def register_methods(register):
        register(
            Method(name="plain", paper="test", encoders=msabench_dmmsa.ENCODERS, fusion="plain-concat", objective="l1")
        )


def test_dmmsa_objective_refuses_a_fusion_without_decomposed_features():
    pm = get_plugin_manager()
    pm.register(PlainPlugin)
    catalog = Catalog.from_plugins(pm)
    with pytest.raises(CatalogError) as error:
        catalog.check_components(catalog.methods["plain"].with_components(objective="dmmsa"))
    message = str(error.value)
    assert "objective 'dmmsa' needs outputs ['logits', 'unimodal', 'similar', 'dissimilar']" in message
    assert "fusion 'plain-concat' does not produce" in message


def test_cli_refuses_objective_dmmsa_on_another_fusion(tmp_path):
    pytest.importorskip("msabench_baselines")  # a fusion that produces only `prediction`
    outcome = CliRunner().invoke(
        cli,
        [
            "run",
            "--method",
            "lf-dnn",
            "--dataset",
            "synthetic-sims",
            "--objective",
            "dmmsa",
            "--results",
            str(tmp_path),
        ],
    )
    assert outcome.exit_code == 1
    assert (
        "objective 'dmmsa' needs outputs" in outcome.output
        and "fusion 'late-concat' does not produce" in outcome.output
    )
