"""B-fusion: the gradient statistics and the omega step against values worked out by hand; through the host's
training step, omega moves by dL_omega alone and every other parameter by the task loss alone; where the add-on
finds W_i."""

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from msabench import PROTOCOL, Catalog, CatalogError, Task, TrainingError, get_plugin_manager  # noqa: E402
from msabench.testing import TinyMSA, tiny_data, tiny_hparams  # noqa: E402
from msabench.train import assemble, resolve_hparams, train_epoch  # noqa: E402
from msabench_awf import Balancer  # noqa: E402
from msabench_awf.fusion import BalancedFusion  # noqa: E402

MODALITIES = ("text", "audio", "vision")
X = {"text": [1.0, 2.0], "audio": [0.5, -0.5], "vision": [3.0, 1.0]}  # mean |x|: 1.5, 0.5, 2
W = {"text": [0.1, 0.2], "audio": [0.3, -0.1], "vision": [-0.2, 0.05]}


def tiny_model(lr=0.1):
    """Z_i = W_i x_i (one output each), prediction = sum_i omega_i Z_i; L = |prediction - y| on one sample."""
    layers = nn.ModuleDict({m: nn.Linear(2, 1, bias=False) for m in MODALITIES})
    with torch.no_grad():
        for m in MODALITIES:
            layers[m].weight.copy_(torch.tensor([W[m]]))
    balancer = Balancer(MODALITIES, lr)
    for m in MODALITIES:
        balancer.bind(m, layers[m].weight, m)
    return layers, balancer


def task_loss(layers, balancer, y=5.0):
    z = {m: layers[m](torch.tensor([X[m]])) for m in MODALITIES}
    prediction = sum(balancer(z).values())
    return (prediction - y).abs().mean()  # prediction (0.5 + 0.2 - 0.55 = 0.15) < y: dL/dprediction = -1


def test_gradient_statistics_match_the_values_worked_out_by_hand():
    layers, balancer = tiny_model()
    g, target, balance = balancer.statistics(task_loss(layers, balancer))
    # dL/dW_i = -omega_i x_i, so g_i = omega_i mean|x_i| = 1.5, 0.5, 2 at omega = 1.
    assert g.tolist() == pytest.approx([1.5, 0.5, 2.0])
    # g_bar = 4/3, r = max g / g = (4/3, 4, 1): targets 16/9, 16/3, 4/3.
    assert target.tolist() == pytest.approx([16 / 9, 16 / 3, 4 / 3])
    assert not target.requires_grad and g.requires_grad
    assert float(balance.detach()) == pytest.approx((16 / 9 - 1.5) + (16 / 3 - 0.5) + (2 - 4 / 3))


def test_omega_step_matches_the_hand_computed_sgd_update_and_only_omega_moves():
    layers, balancer = tiny_model(lr=0.1)
    loss = task_loss(layers, balancer)
    losses = {"total": loss}
    balancer.on_before_backward(None, None, losses)  # what the trainer calls before its backward
    assert float(losses["balance"]) == pytest.approx(52 / 9)
    loss.backward()  # the trainer's backward of the task loss
    # the task loss's gradients are the plain ones: dL/dW_i = -omega_i x_i, nothing from L_omega
    for m in MODALITIES:
        assert layers[m].weight.grad[0].tolist() == pytest.approx([-x for x in X[m]])
    assert balancer.omega.grad.abs().sum() > 0  # the task loss does reach omega (dL/domega_i = -Z_i) ...
    balancer.on_after_backward(None, None)
    assert balancer.omega.grad is None  # ... and that gradient is discarded
    # dL_omega/domega_i = sign(g_i - target_i) * dg_i/domega_i = (-1.5, -0.5, +2): omega - 0.1 * that
    assert balancer.omega.detach().tolist() == pytest.approx([1.15, 1.05, 0.8])
    for m in MODALITIES:
        assert layers[m].weight.detach()[0].tolist() == pytest.approx(W[m])  # nobody but the optimizer moves W


def test_a_second_step_starts_from_the_new_weights():
    layers, balancer = tiny_model(lr=0.1)
    for _ in range(2):
        loss = task_loss(layers, balancer)
        balancer.on_before_backward(None, None, {"total": loss})
        loss.backward()
        balancer.on_after_backward(None, None)
    # step 2 at omega (1.15, 1.05, 0.8): g = (1.725, 0.525, 1.6); g_bar = 1.2833, max = 1.725
    # targets: 1.2833, 4.2167, 1.3836 -> signs (+, -, +); dg_i/domega_i = mean|x_i| = (1.5, 0.5, 2)
    assert balancer.omega.detach().tolist() == pytest.approx([1.15 - 0.15, 1.05 + 0.05, 0.8 - 0.2])


def test_omega_stops_at_its_floor():
    layers, balancer = tiny_model(lr=1.0)  # the vision step would be 1 - 2 = -1
    loss = task_loss(layers, balancer)
    balancer.on_before_backward(None, None, {"total": loss})
    loss.backward()
    balancer.on_after_backward(None, None)
    assert balancer.omega.detach().tolist() == pytest.approx([2.5, 1.5, 0.0])


def test_a_layer_the_loss_does_not_reach_is_a_clear_error():
    layers, balancer = tiny_model()
    balancer.bind("audio", nn.Linear(2, 1).weight, "encoders.audio.pooler.weight")
    with pytest.raises(TrainingError, match="does not reach encoders.audio.pooler.weight.*fusion.project"):
        balancer.statistics(task_loss(layers, balancer))


# -- through the host -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


def one_batch_run(catalog, name, **fusion):
    """The method on TinyMSA, assembled as fit() does, with one batch per epoch and plain SGD."""
    method = catalog.methods[name]
    data = tiny_data(TinyMSA)
    hparams = tiny_hparams(catalog, method, TinyMSA)
    hparams["train"].update(
        batch_size=len(data.splits["train"]), lr=0.05, optimizer="sgd", momentum=0.0, weight_decay=0.0
    )
    hparams["train"].pop("lr_groups", None)
    hparams["fusion"].update(fusion)
    for section in ("fusion", *method.encoders):  # no dropout: the host's shuffled batch and ours give one loss
        hparams.setdefault(section, {})["dropout"] = 0.0
    hparams = resolve_hparams(hparams, data, 0, PROTOCOL)
    return assemble(method, data, catalog=catalog, seed=0, hparams=hparams, device="cpu")


@pytest.mark.parametrize("name", ["awf", "lf-dnn-gb"])
def test_the_host_step_moves_omega_by_l_omega_and_the_rest_by_the_task_loss(catalog, name):
    run = one_batch_run(catalog, name, omega_lr=5.0)
    for callback in run.callbacks:
        callback.on_fit_start(run)
    balancer = run.model.fusion.balancer
    omega = balancer.omega
    assert all(omega is not p for group in run.optimizer.param_groups for p in group["params"])
    # the expected step, computed apart on a copy: the task gradient of every parameter, dL_omega/domega
    model, objective = copy.deepcopy(run.model), copy.deepcopy(run.objective)
    model.train(), objective.train()
    torch.manual_seed(123)
    batch = next(run.data.splits["train"].batches(len(run.data.splits["train"])))
    loss = objective(model(batch), batch)["total"]
    weights = {m: p for m, p in model.named_parameters() if p is not model.fusion.balancer.omega}
    copied = model.fusion.balancer
    copied.weights = {m: dict(model.named_parameters())[where] for m, where in balancer.where.items()}
    _, _, balance = copied.statistics(loss)
    (d_omega,) = torch.autograd.grad(balance, copied.omega, retain_graph=True)
    task = torch.autograd.grad(loss, [*weights.values(), copied.omega], allow_unused=True)
    assert task[-1].abs().sum() > 0  # the task loss would move omega: the host must not let it
    assert d_omega.abs().sum() > 0
    expected = {
        key: p.detach() - 0.05 * (g if g is not None else 0)
        for (key, p), g in zip(weights.items(), task[:-1], strict=True)
    }
    # the host's step (one batch: the same samples, shuffled; no dropout in these tiny builds)
    before = omega.detach().clone()
    torch.manual_seed(123)
    train_epoch(run)
    assert omega.detach() == pytest.approx((before - 5.0 * d_omega).clamp(min=0), abs=1e-6)
    for key, parameter in run.model.named_parameters():
        if parameter is not omega:
            assert torch.allclose(parameter.detach(), expected[key], atol=1e-6), key


def test_omega_is_logged_per_epoch_and_saved_with_the_model(catalog):
    run = one_batch_run(catalog, "awf")
    for callback in run.callbacks:
        callback.on_fit_start(run)
    logs = {}
    train_epoch(run)
    for callback in run.callbacks:
        callback.on_epoch_end(run, 1, logs)
    omega = run.model.fusion.balancer.omega.detach().tolist()
    assert [logs["omega_T"], logs["omega_A"], logs["omega_V"]] == pytest.approx(omega)
    assert omega != [1.0, 1.0, 1.0]
    assert run.model.state_dict()["fusion.balancer.omega"].tolist() == pytest.approx(omega)
    assert 0 < logs["alpha_T"] < 1


def test_the_add_on_measures_each_encoders_last_linear_layer(catalog):
    run = one_batch_run(catalog, "lf-dnn-gb")
    for callback in run.callbacks:
        callback.on_fit_start(run)
    balancer = run.model.fusion.balancer
    assert balancer.where == {
        "text": "encoders.text.linear.weight",
        "audio": "encoders.audio.net.6.weight",
        "vision": "encoders.vision.net.6.weight",
    }
    assert balancer.weights["text"] is run.model.encoders["text"].linear.weight


def test_bert_text_gets_the_add_ons_projection(catalog):
    run = one_batch_run(catalog, "lf-lstm-bert-gb")
    for callback in run.callbacks:
        callback.on_fit_start(run)
    assert run.model.fusion.balancer.where["text"] == "fusion.project.text.weight"
    assert run.model.fusion.balancer.where["audio"] == "encoders.audio.linear.weight"


def test_an_encoder_without_a_linear_layer_is_a_clear_error(catalog):
    run = one_batch_run(catalog, "lf-lstm-gb")
    run.model.encoders["audio"].linear = None
    with pytest.raises(TrainingError, match=r"needs a linear output layer in the audio encoder.*--set audio.out=N"):
        run.model.fusion.balancer.on_fit_start(run)


def test_b_fusion_wraps_registered_fusions_by_name_only():
    task = Task("regression", "mosi", (-3.0, 3.0))
    dims = {"text": 4, "audio": 3, "vision": 2}
    with pytest.raises(CatalogError, match=r"msabench.lookup\('fusions', 'late-concat'\) answers while a catalog"):
        BalancedFusion(dims, task, fusion="late-concat")  # outside a build: no catalog to look the fusion up in
    with Catalog.from_plugins(get_plugin_manager()).active():
        check_wrapping(task, dims)


def check_wrapping(task, dims):
    fused = BalancedFusion(dims, task, fusion="late-concat", post_fusion_dim=8, project={"text": 5})
    assert fused.fusion.head[1].in_features == 5 + 3 + 2
    with pytest.raises(CatalogError, match="Unknown fusion 'late-concot'. Did you mean: late-concat"):
        BalancedFusion(dims, task, fusion="late-concot")
    with pytest.raises(CatalogError, match="cannot wrap 'awf'"):
        BalancedFusion(dims, task, fusion="awf")
    with pytest.raises(CatalogError, match="takes sequences"):
        BalancedFusion(dims, task, fusion="mult")
    with pytest.raises(ValueError, match=r"project names \['image'\]"):
        BalancedFusion(dims, task, project={"image": 4})
