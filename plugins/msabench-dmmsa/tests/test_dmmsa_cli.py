"""`msabench run --method dmmsa --dataset ch-sims` end to end, on a small pickle in MMSA's CH-SIMS layout."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never touch the hub

import numpy as np
import pytest
from click.testing import CliRunner

import msabench_dmmsa
from msabench import Catalog, CatalogError, Fusion, Method, get_plugin_manager, hookimpl
from msabench.cli import cli
from msabench.formats import write_pickle

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


def staged(tiny: dict, prefix: str) -> dict:
    """The tiny settings of a staged method: encoder sections go to their stage (``dmmsa-text:text.hidden_size``),
    the batch size to every stage, the fusion settings to the final stage (which builds its encoders as the
    stages did)."""
    found = {}
    for key, value in tiny.items():
        section = key.split(".")[0]
        if section in ("text", "audio", "vision"):
            found[f"{prefix}-{section}:{key}"] = value
        else:
            found[key] = value
            if section == "train":
                found |= {f"{prefix}-{m}:{key}": value for m in ("text", "audio", "vision")}
    return found


def run(tmp_path, *extra, method="dmmsa", tiny=None):
    tiny = staged(TINY, method) if tiny is None and method in ("dmmsa", "confede") else tiny or TINY
    given = {arg.partition("=")[0] for flag, arg in zip(extra, extra[1:], strict=False) if flag == "--set"}  # these win
    sets = [arg for key, value in tiny.items() if key not in given for arg in ("--set", f"{key}={value}")]
    args = ["run", "--method", method, "--dataset", "ch-sims", "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "3", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    return CliRunner().invoke(cli, [*args, *sets, *extra])


def results(tmp_path) -> dict:
    """Every result under tmp_path/results/ch-sims by method name."""
    return {
        json.loads(path.read_text())["method"]: json.loads(path.read_text())
        for path in (tmp_path / "results" / "ch-sims").rglob("seed-1111.json")
    }


def test_dmmsa_runs_its_three_stages_then_the_fusion_and_logs_its_terms_and_weights(tmp_path):
    write_sims(tmp_path / "data")
    outcome = run(tmp_path)
    assert outcome.exit_code == 0, outcome.output
    found = results(tmp_path)
    assert set(found) == {"dmmsa-text", "dmmsa-audio", "dmmsa-vision", "dmmsa"}
    text_stage = found["dmmsa-text"]
    assert text_stage["hparams"]["objective"] == {"label": "T"}  # pre-trained on the text label
    assert text_stage["hparams"]["train"]["lr"] == 1e-5 and text_stage["hparams"]["train"]["batch_size"] == 8
    assert text_stage["hparams"]["text"]["pooling"] == "pooler" and text_stage["hparams"]["text"]["train_layers"] == 1
    assert found["dmmsa-audio"]["hparams"]["objective"] == {"label": "A"}
    assert found["dmmsa-audio"]["hparams"]["train"]["lr"] == 1e-4
    result = found["dmmsa"]
    assert result["data"]["verified"] is False and set(result["stages"]) == {"text", "audio", "vision"}
    assert result["protocol"]["id"] == "mmsa-1+max_epochs=3" and result["epochs"] == 3
    assert result["hparams"]["text"]["finetune"] is False and result["hparams"]["text"]["random_init"] is True
    assert result["hparams"]["text"]["init_from"] == result["stages"]["text"]["checkpoint"]
    assert result["hparams"]["audio"]["d_model"] == 8  # built as the audio stage built it
    assert result["hparams"]["train"]["lr"] == 1e-4 and "lr_groups" not in result["hparams"]["train"]
    assert result["parameters"]["trainable"] < result["parameters"]["total"]  # BERT frozen in the fusion stage
    history = result["history"]
    assert all(set(epoch["train"]) == {"total", "msr", "msc", "uni", "cl"} for epoch in history)
    assert history[0]["lambda"] == history[1]["lambda"] == {"uni": 0.5, "cl": 0.5}  # equal; epoch 1 the reference
    ratios = {k: history[1]["train"][k] / history[0]["train"][k] for k in ("uni", "cl")}  # GDWG by hand
    assert history[2]["lambda"]["uni"] == pytest.approx(1 / (1 + np.exp((ratios["cl"] - ratios["uni"]) / 2)), rel=1e-9)
    assert history[2]["lambda"]["uni"] + history[2]["lambda"]["cl"] == pytest.approx(1.0)
    assert set(result["metrics"]) == {"Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"}
    maes = [epoch["valid"]["MAE"] for epoch in history]
    assert result["best_epoch"] == 1 + maes.index(min(maes))  # selected on validation MAE
    board = (tmp_path / "boards" / "ch-sims.md").read_text()
    assert "| dmmsa [" in board and "Liang et al., Appl. Sci. 2025" in board
    ablation = run(tmp_path, method="dmmsa-wo-cl", tiny=staged(TINY, "dmmsa"))
    assert ablation.exit_code == 0, ablation.output
    assert ablation.output.count("done already") == 3  # the ablation reuses dmmsa's stage runs
    assert len(list((tmp_path / "results" / "ch-sims").rglob("seed-1111.json"))) == 5
    assert results(tmp_path)["dmmsa-wo-cl"]["stages"] == result["stages"]
    assert all(epoch["lambda"] == {"uni": 0.5} for epoch in results(tmp_path)["dmmsa-wo-cl"]["history"])


def test_dmmsa_joint_is_the_single_run(tmp_path):
    write_sims(tmp_path / "data")
    outcome = run(tmp_path, method="dmmsa-joint")
    assert outcome.exit_code == 0, outcome.output
    (result,) = results(tmp_path).values()
    assert result["method"] == "dmmsa-joint" and result["stages"] == {}
    assert result["hparams"]["train"]["lr_groups"] == {"encoders.text": 1e-5}  # the paper's fine-tuning rate
    assert result["hparams"]["train"]["lr"] == 1e-4 and result["hparams"]["text"]["finetune"] is True
    assert all(set(epoch["train"]) == {"total", "msr", "msc", "uni", "cl"} for epoch in result["history"])


def test_confede_runs_its_stages_contrasts_neighbours_and_selects_on_acc2_for_ch_sims(tmp_path):
    write_sims(tmp_path / "data")
    outcome = run(tmp_path, method="confede")
    assert outcome.exit_code == 0, outcome.output
    found = results(tmp_path)
    assert set(found) == {"confede-text", "confede-audio", "confede-vision", "confede"}
    assert found["confede-audio"]["hparams"]["audio"]["layers"] == 2  # ConFEDE's CH-SIMS config: audio 2, vision 1
    assert found["confede-vision"]["hparams"]["vision"]["layers"] == 1
    assert found["confede-audio"]["hparams"]["train"]["batch_size"] == 8  # --set confede-audio:train.batch_size
    result = found["confede"]
    assert result["hparams"]["train"]["max_epochs"] == 50 and result["method_info"]["key_metric"] == "Acc-2"
    history = result["history"]
    assert all(set(epoch["train"]) == {"total", "msr", "uni", "cl"} for epoch in history)
    assert all(epoch["train"]["cl"] > 0 for epoch in history) and all(epoch["valid"]["loss"] > 0 for epoch in history)
    accuracies = [epoch["valid"]["Acc-2"] for epoch in history]
    assert result["best_epoch"] == 1 + accuracies.index(max(accuracies))


def test_missing_bert_checkpoint_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("MSABENCH_MODELS", raising=False)
    write_sims(tmp_path / "data")
    outcome = run(tmp_path, "--set", "dmmsa-text:text.random_init=false", "--max-epochs", "1")
    assert outcome.exit_code == 1
    assert "Error: seed 1111, stage dmmsa-text (its settings: --set dmmsa-text:SECTION.KEY=VALUE" in outcome.output
    assert "encoder 'bert-text': cannot load the model 'bert-base-chinese'" in outcome.output
    assert "Traceback" not in outcome.output


def test_cpu_path_swaps_bert_for_the_text_features(tmp_path):
    write_sims(tmp_path / "data")
    tiny = {**{k: v for k, v in TINY.items() if not k.startswith("text.")}, "text.d_model": "8", "text.heads": "2"}
    outcome = run(tmp_path, "--encoder", "text=transformer-seq", "--max-epochs", "1", method="dmmsa-joint", tiny=tiny)
    assert outcome.exit_code == 0, outcome.output
    (result,) = results(tmp_path).values()
    assert result["method_info"]["encoders"]["text"] == "transformer-seq"
    assert result["hparams"]["train"]["lr_groups"] == {}  # BERT's fine-tuning rate does not follow the swap
    staged_tiny = {k: v for k, v in staged(TINY, "dmmsa").items() if "text" not in k}
    staged_tiny |= {"text.d_model": "8", "text.heads": "2"}
    swapped = run(tmp_path, "--encoder", "text=transformer-seq", "--max-epochs", "1", tiny=staged_tiny)
    assert swapped.exit_code == 0, swapped.output
    assert set(results(tmp_path)["dmmsa"]["stages"]) == {"audio", "vision"}  # the swapped encoder has no stage


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
