"""Self-MM: the unimodal label generation against values worked out by hand, its per-sample state across a
resume, the run on small MMSA-layout pickles, and its refusal of IEMOCAP."""

import json
import os
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from msabench import Batch, Catalog, CatalogError, Task, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench.testing import write_tiny_file  # noqa: E402
from msabench_core.iemocap import IEMOCAP  # noqa: E402
from msabench_core.mmsa import MOSI, SIMS  # noqa: E402
from msabench_self_mm.model import UnimodalLabels  # noqa: E402

TASK = Task("regression", "mosi", (-3.0, 3.0))


def fitted(H=3.0):  # noqa: N803
    """The objective after on_fit_start on four samples, with stored features whose centres are easy to see."""
    objective = UnimodalLabels(TASK, H=H)
    run = SimpleNamespace(
        data=SimpleNamespace(splits={"train": SimpleNamespace(tensors={"label": torch.tensor([1.0, -2.0, 0.5, -0.5])})})
    )
    objective.on_fit_start(run)
    objective.features_M = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [-2.0, 0.0]])  # centres +-1.5
    objective.features_T = torch.tensor([[1.0], [-1.0], [3.0], [-3.0]])  # centres +-2
    objective.features_A = torch.tensor([[0.5], [-0.5], [0.5], [-0.5]])  # centres +-0.5
    objective.features_V = torch.tensor([[1.0], [-1.0], [3.0], [-3.0]])  # centres +-2
    objective.on_epoch_start(run, 2)
    return objective


BATCH = {
    "index": torch.tensor([0, 1]),
    "M": torch.tensor([[1.0, 0.0], [-1.0, 0.0]]),
    "T": torch.tensor([[1.0], [-1.0]]),
    "A": torch.tensor([[0.0], [-1.0]]),
    "V": torch.tensor([[-1.0], [-5.0]]),
}


def test_ulgm_update_matches_the_values_worked_out_by_hand():
    objective = fitted()
    assert objective.labels.tolist() == [[1.0] * 4, [-2.0] * 4, [0.5] * 4, [-0.5] * 4]  # T/A/V start as M
    objective.update_labels(BATCH, BATCH["index"])
    # Sample 0 (y = 1): d_fp = 0.5, d_fn = 2.5 -> delta_f = 4. Epoch n = 2: label = 1/3 old + 2/3 new.
    #   T: d_sp = 1, d_sn = 3 -> delta_s = 2, alpha = 1/2, new = 0.25 + (1 + 2 - 4)/2 = -0.25
    #   A: d_sp = d_sn = 0.5 -> delta_s = 0, alpha = 0, new = (1 - 4)/2 = -1.5
    #   V: d_sp = 3, d_sn = 1 -> delta_s = -2/3, alpha = -1/6, new = -1/12 + (1 - 2/3 - 4)/2 = -23/12
    # Sample 1 (y = -2): d_fp = 2.5, d_fn = 0.5 -> delta_f = -0.8.
    #   T: d_sp = 3, d_sn = 1 -> delta_s = -2/3, alpha = 5/6, new = -5/6 + (-2 - 2/3 + 0.8)/2 = -53/30
    #   A: d_sp = 1.5, d_sn = 0.5 -> delta_s = -2/3: as T
    #   V: d_sp = 7, d_sn = 3 -> delta_s = -4/7, alpha = 5/7, new = -5/7 + (-2 - 4/7 + 0.8)/2 = -1.6
    expected = {
        0: [1.0, 1 / 3 + 2 / 3 * -0.25, 1 / 3 + 2 / 3 * -1.5, 1 / 3 + 2 / 3 * (-23 / 12)],
        1: [-2.0, -2 / 3 + 2 / 3 * (-53 / 30), -2 / 3 + 2 / 3 * (-53 / 30), -2 / 3 + 2 / 3 * -1.6],
    }
    for row, values in expected.items():
        assert objective.labels[row].tolist() == pytest.approx(values, abs=1e-5)
    assert objective.labels[2:].tolist() == [[0.5] * 4, [-0.5] * 4]  # samples outside the batch keep theirs


def test_ulgm_clamps_the_new_labels_to_H():
    objective = fitted(H=1.0)
    objective.update_labels(BATCH, BATCH["index"])
    assert objective.labels[1, 1].item() == pytest.approx(-2 / 3 + 2 / 3 * -1.0)  # -53/30 clamped to -1


def test_the_loss_weights_unimodal_terms_by_their_distance_to_the_multimodal_label():
    objective = fitted()
    objective.labels[0, 1:] = torch.tensor([0.0, 1.0, 3.0])
    outputs = {"prediction": torch.tensor([[0.5]]), "prediction_T": torch.tensor([[1.0]])}
    outputs |= {"prediction_A": torch.tensor([[2.0]]), "prediction_V": torch.tensor([[0.0]])}
    outputs |= {f"feature_{t}": torch.zeros(1, 1) for t in "MTAV"}
    losses = objective(outputs, Batch(label=torch.tensor([1.0]), index=torch.tensor([0])))
    assert losses["M"].item() == pytest.approx(0.5)
    assert losses["T"].item() == pytest.approx(torch.tanh(torch.tensor(1.0)).item() * 1.0)  # |0 - 1| -> tanh(1)
    assert losses["A"].item() == pytest.approx(0.0)  # its label equals M's: weight tanh(0) = 0
    assert losses["V"].item() == pytest.approx(torch.tanh(torch.tensor(2.0)).item() * 3.0)
    assert losses["total"].item() == pytest.approx(sum(losses[t].item() for t in "MTAV"))
    assert objective.eval()(outputs, Batch(label=torch.tensor([1.0]), index=torch.tensor([0])))["total"] == 0.5


def test_features_are_stored_every_batch_and_labels_move_from_the_second_epoch():
    objective = fitted()
    objective.on_epoch_start(None, 1)
    objective.pending = {**BATCH, "M": torch.tensor([[9.0, 9.0], [8.0, 8.0]])}
    before = objective.labels.clone()
    objective.on_after_backward(None, None)
    assert torch.equal(objective.labels, before)  # epoch 1: no update
    assert objective.features_M[:2].tolist() == [[9.0, 9.0], [8.0, 8.0]] and objective.pending is None


def test_the_per_sample_state_survives_a_resume():
    objective = fitted()
    objective.update_labels(BATCH, BATCH["index"])
    state = objective.state_dict()
    fresh = UnimodalLabels(TASK)
    fresh.load_state_dict(state)
    for name, value in state.items():
        assert torch.equal(getattr(fresh, name), value), name


def run(tmp_path, dataset, *sets):
    args = ["run", "-m", "self-mm", "-d", dataset, "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "2", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    tiny = ["text.random_init=true", "text.hidden_size=16", "text.layers=1", "text.heads=2"]
    tiny += ["text.intermediate_size=32", "train.batch_size=8", *sets]
    outcome = CliRunner().invoke(cli, [*args, *(arg for value in tiny for arg in ("--set", value))])
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / dataset).rglob("seed-1111.json")
    return json.loads(path.read_text())


def test_self_mm_runs_on_mmsa_pickles_with_per_part_learning_rates(tmp_path):
    write_tiny_file(MOSI, tmp_path / "data")
    write_tiny_file(SIMS, tmp_path / "data")
    result = run(tmp_path, "mosi")
    assert all(set(epoch["train"]) == {"total", "M", "T", "A", "V"} for epoch in result["history"])
    train = result["hparams"]["train"]
    assert train["lr_groups"]["encoders.text"] == {"lr": 5e-5, "weight_decay": 1e-3}
    assert train["lr_groups"]["encoders.audio"]["lr"] == 5e-3 and train["accumulate"] == 4
    assert result["hparams"]["objective"] == {"H": 3.0}
    sims = run(tmp_path, "ch-sims")
    assert sims["hparams"]["objective"] == {"H": 1.0} and sims["hparams"]["vision"]["hidden"] == 64
    assert set(sims["metrics"]) == {"Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"}


def test_self_mm_refuses_iemocap_before_training():
    catalog = Catalog.from_plugins(get_plugin_manager())
    with pytest.raises(
        CatalogError, match=r"^method 'self-mm' handles regression tasks; dataset 'iemocap' is a multilabel task\.$"
    ):
        catalog.check(catalog.methods["self-mm"], IEMOCAP)
