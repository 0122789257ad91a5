"""MISA end to end on a small MMSA-layout pickle, its loss terms by hand, and its refusal of IEMOCAP."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from msabench import Batch, Catalog, CatalogError, Task, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench.testing import write_tiny_file  # noqa: E402
from msabench_core.iemocap import IEMOCAP  # noqa: E402
from msabench_core.mmsa import MOSI  # noqa: E402
from msabench_misa.model import MISALoss, StackedBiLSTM, cmd, orthogonality  # noqa: E402

TINY = {
    "text.random_init": "true",
    "text.hidden_size": "16",
    "text.layers": "1",
    "text.heads": "2",
    "text.intermediate_size": "32",
    "fusion.hidden": "8",
    "train.batch_size": "8",
}


def test_misa_runs_on_an_mmsa_mosi_pickle_and_logs_its_loss_terms(tmp_path):
    write_tiny_file(MOSI, tmp_path / "data")
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    args = ["run", "-m", "misa", "-d", "mosi", "--data-root", str(tmp_path / "data"), "--no-verify", "--seeds", "1111"]
    args += ["--max-epochs", "1", "--results", str(tmp_path / "results"), "--leaderboards", str(tmp_path / "boards")]
    outcome = CliRunner().invoke(cli, [*args, "--no-progress", "--no-checkpoints", "-q", *sets])
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "mosi").rglob("seed-1111.json")
    result = json.loads(path.read_text())
    assert set(result["history"][0]["train"]) == {"total", "task", "diff", "sim", "recon"}
    assert result["hparams"]["objective"] == {"diff": 0.1, "sim": 0.3, "recon": 1.0}
    train = result["hparams"]["train"]
    assert (train["lr"], train["grad_clip_value"], train["accumulate"], train["batch_size"]) == (1e-4, 0.8, 2, 8)
    assert result["method_info"]["encoders"] == {"text": "bert-text", "audio": "misa-lstm", "vision": "misa-lstm"}


def test_misa_refuses_iemocap_before_training_naming_the_task():
    catalog = Catalog.from_plugins(get_plugin_manager())
    with pytest.raises(CatalogError) as error:
        catalog.check(catalog.methods["misa"], IEMOCAP)
    assert str(error.value) == "method 'misa' handles regression tasks; dataset 'iemocap' is a multilabel task."


def test_orthogonality_and_cmd_by_hand():
    a = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])  # centred, unit rows; uncorrelated with b over the samples
    b = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    assert orthogonality(a, b).item() == pytest.approx(0.0, abs=1e-9)
    assert orthogonality(a, a).item() == pytest.approx(16.0, rel=1e-5)  # (a^T a)^2 = 4^2, one entry
    c = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # across samples, c's first feature moves with d's second
    d = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    assert orthogonality(c, d).item() == pytest.approx(1.0, rel=1e-5)  # c^T d = [[0, 2], [0, 0]] -> 4 / 4
    x, y = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [1.0]])
    # means 1 and 1; central moments of x: k=2 -> 1, k=3 -> 0, k=4 -> 1, k=5 -> 0; of y all 0
    assert cmd(x, y, moments=5).item() == pytest.approx(2.0)
    assert cmd(x, y, moments=1).item() == pytest.approx(0.0)


def outputs(batch=4, hidden=3, seed=0):
    torch.manual_seed(seed)
    stacked = {k: torch.rand(3, batch, hidden) for k in ("projected", "private", "shared", "reconstructed")}
    return {"prediction": torch.randn(batch, 1), **stacked}


def test_misa_loss_is_the_weighted_sum_and_validation_is_the_task_loss_alone():
    loss = MISALoss(Task("regression", "mosi", (-3.0, 3.0)), diff=0.1, sim=0.3, recon=1.0)
    out, batch = outputs(), Batch(label=torch.tensor([0.5, -1.0, 2.0, 0.0]), index=torch.arange(4))
    terms = loss(out, batch)
    mse = ((out["prediction"].reshape(-1) - batch["label"]) ** 2).mean()
    assert terms["task"] == pytest.approx(mse.item())
    p, s = out["private"], out["shared"]
    diff = sum(
        orthogonality(x, y)
        for x, y in [(p[0], s[0]), (p[1], s[1]), (p[2], s[2]), (p[1], p[0]), (p[1], p[2]), (p[0], p[2])]
    )
    assert terms["diff"].item() == pytest.approx(diff.item())
    sim = (cmd(s[0], s[2]) + cmd(s[0], s[1]) + cmd(s[1], s[2])) / 3
    assert terms["sim"].item() == pytest.approx(sim.item())
    recon = sum(((out["reconstructed"][i] - out["projected"][i]) ** 2).mean() for i in range(3)) / 3
    assert terms["recon"].item() == pytest.approx(recon.item())
    expected = mse + 0.1 * diff + 0.3 * sim + 1.0 * recon
    assert terms["total"].item() == pytest.approx(expected.item())
    assert loss.eval()(out, batch) == {"total": pytest.approx(mse)}


def test_stacked_bilstm_ignores_padding():
    torch.manual_seed(2)
    spec = type("Spec", (), {"dim": 3, "shape": (6, 3)})()
    encoder = StackedBiLSTM(spec).eval()
    x, lengths = torch.randn(2, 6, 3), torch.tensor([6, 2])
    x[1, 2:] = 99.0
    out = encoder(x, lengths)
    assert out.shape == (2, 12)
    assert torch.allclose(out[1], encoder(x[1:, :2], None)[0], atol=1e-6)
