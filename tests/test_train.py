"""fit(): seeding, validation-only selection, patience, the single test evaluation, callbacks, checkpoints."""

import math
import resource
import sys
from dataclasses import replace

import pytest
import torch

from fakes import TINY, Plugin, TinyData
from msabench import Callback, Protocol, TrainingError, fit
from msabench.train import build_optimizer, keep_freed_memory
from test_catalog import catalog_with

SHORT = Protocol(max_epochs=6, patience=3)


@pytest.fixture(scope="module")
def catalog():
    return catalog_with(Plugin())


@pytest.fixture(scope="module")
def data():
    return TinyData().load()


def test_same_seed_gives_identical_results_and_other_seeds_differ(catalog, data):
    first = fit(TINY, data, catalog=catalog, seed=1111, protocol=SHORT)
    second = fit(TINY, data, catalog=catalog, seed=1111, protocol=SHORT)
    other = fit(TINY, data, catalog=catalog, seed=1112, protocol=SHORT)
    assert first.metrics == second.metrics and first.history == second.history
    assert first.predictions == second.predictions
    assert other.predictions["predictions"] != first.predictions["predictions"]


def test_the_selected_epoch_has_the_lowest_validation_loss_and_its_test_metrics_are_reported(catalog, data):
    result = fit(TINY, data, catalog=catalog, seed=1111, protocol=SHORT)
    losses = [epoch["valid"]["loss"] for epoch in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.valid_metrics == result.history[result.best_epoch - 1]["valid"]
    assert len(result.predictions["ids"]) == len(data.splits["test"]) == 24
    assert result.predictions["ids"] == data.splits["test"].ids  # unshuffled evaluation
    assert set(result.metrics) == {
        "Acc-2_has0",
        "F1_has0",
        "Acc-2_non0",
        "F1_non0",
        "Acc-3",
        "Acc-5",
        "Acc-7",
        "MAE",
        "Corr",
    }
    assert result.hparams["train"]["eval_batch_size"] == 16


def test_the_test_split_never_influences_training_or_selection(catalog, data):
    clean = fit(TINY, data, catalog=catalog, seed=1111, protocol=SHORT)
    poisoned_test = data.splits["test"]
    tensors = {
        key: (torch.randn_like(value) * 100 if value.is_floating_point() else value)
        for key, value in poisoned_test.tensors.items()
    }
    poisoned = replace(data, splits={**data.splits, "test": type(poisoned_test)("test", poisoned_test.ids, tensors)})
    result = fit(TINY, poisoned, catalog=catalog, seed=1111, protocol=SHORT)
    assert result.history == clean.history and result.best_epoch == clean.best_epoch
    assert result.metrics != clean.metrics


def test_patience_stops_training(catalog, data):
    # A learning rate of 0 never improves after epoch 1: stop after `patience` more epochs.
    frozen = fit(
        TINY,
        data,
        catalog=catalog,
        seed=1111,
        protocol=Protocol(max_epochs=50, patience=3),
        hparams={"train": {"lr": 0.0, "batch_size": 16}},
    )
    assert frozen.best_epoch == 1 and frozen.epochs == 4


def test_epochs_are_capped_by_the_protocol_and_the_method(catalog, data):
    assert fit(TINY, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=2)).epochs == 2
    capped = replace(TINY, hparams={"train": {"batch_size": 16, "lr": 1e-2, "max_epochs": 1}})
    assert fit(capped, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=5)).epochs == 1


def test_a_key_metric_selects_on_that_validation_metric(catalog, data):
    by_corr = replace(TINY, key_metric="Corr")
    result = fit(by_corr, data, catalog=catalog, seed=1111, protocol=SHORT)
    corrs = [epoch["valid"]["Corr"] for epoch in result.history]
    assert result.best_epoch == 1 + corrs.index(max(corrs))


def test_callbacks_are_called_in_order_and_can_log(catalog, data):
    calls = []

    class Recorder(Callback):
        def on_fit_start(self, run):
            calls.append(("start", run.seed, type(run.optimizer).__name__))

        def on_epoch_end(self, run, epoch, logs):
            calls.append(("epoch", epoch))
            logs["recorded"] = epoch * 10

        def on_fit_end(self, run, result):
            calls.append(("end", result.best_epoch))

    result = fit(TINY, data, catalog=catalog, seed=7, protocol=Protocol(max_epochs=2), callbacks=(Recorder(),))
    assert calls == [("start", 7, "Adam"), ("epoch", 1), ("epoch", 2), ("end", result.best_epoch)]
    assert [epoch["recorded"] for epoch in result.history] == [10, 20]


def test_on_exception_is_called_and_a_diverging_loss_is_a_clear_error(catalog, data):
    seen = []

    class Watch(Callback):
        def on_exception(self, run, error):
            seen.append(type(error).__name__)

    exploding = replace(TINY, hparams={"train": {"batch_size": 16, "lr": 1e30}})
    with pytest.raises(
        TrainingError,
        match=r"tiny on tiny-data, seed 1: the loss became .* Lower the learning rate \(--set train.lr=...\)",
    ):
        fit(exploding, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=30), callbacks=(Watch(),))
    assert seen == ["TrainingError"]


def test_the_checkpoint_holds_the_selected_weights(catalog, data, tmp_path):
    path = tmp_path / "run" / "seed-1.pt"
    result = fit(TINY, data, catalog=catalog, seed=1, protocol=SHORT, checkpoint=path)
    saved = torch.load(path, weights_only=True)
    assert saved["method"] == "tiny" and saved["seed"] == 1 and saved["hparams"] == result.hparams
    model, _ = catalog.build(TINY, data, result.hparams)
    model.load_state_dict(saved["model"])
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(batch)["prediction"].reshape(-1) for batch in data.splits["test"].batches(16)])
    assert predictions.tolist() == pytest.approx(result.predictions["predictions"], abs=1e-6)
    assert [p.name for p in path.parent.iterdir()] == ["seed-1.pt"]  # no temp file left


def test_lr_groups_give_prefixes_their_own_rate(catalog, data):
    model, objective = catalog.build(TINY, data, {})
    optimizer = build_optimizer(
        model,
        objective,
        {
            "lr": 1e-3,
            "weight_decay": 0.1,
            "lr_groups": {"encoders.text": 1e-5, "fusion": {"lr": 1e-2, "weight_decay": 0.0}},
        },
    )
    groups = {(g["lr"], g["weight_decay"]): sum(p.numel() for p in g["params"]) for g in optimizer.param_groups}
    text = sum(p.numel() for p in model.encoders["text"].parameters())
    fusion = sum(p.numel() for p in model.fusion.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert groups == {(1e-5, 0.1): text, (1e-2, 0.0): fusion, (1e-3, 0.1): total - text - fusion}


def test_frozen_parameters_are_not_optimised(catalog, data):
    model, objective = catalog.build(TINY, data, {})
    model.encoders["text"].requires_grad_(False)
    optimizer = build_optimizer(model, objective, {})
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in optimised for p in model.encoders["text"].parameters())


def test_adam_and_adamw_use_fused_kernels_and_take_the_loops_steps(catalog, data):
    batch = next(data.splits["train"].batches(8))
    steps = {}
    for kind in ("adam", "adamw", "sgd"):
        for fused in (True, False):
            torch.manual_seed(0)
            model, objective = catalog.build(TINY, data, {})
            optimizer = build_optimizer(model, objective, {"optimizer": kind, "weight_decay": 0.01})
            assert bool(optimizer.defaults.get("fused")) == (kind != "sgd")
            if not fused:  # the same groups through torch's default per-tensor loop
                optimizer = type(optimizer)([{**g, "fused": None} for g in optimizer.param_groups])
                assert not optimizer.param_groups[0]["fused"]
            for _ in range(3):
                optimizer.zero_grad()
                objective(model(batch), batch)["total"].backward()
                optimizer.step()
            steps[kind, fused] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    for kind in ("adam", "adamw"):
        assert torch.allclose(steps[kind, True], steps[kind, False], rtol=0, atol=1e-6)
    assert torch.equal(steps["sgd", True], steps["sgd", False])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_training_buffers_are_reused_without_page_faults():
    def step():  # three 32 MB buffers, freed together, as a training step's activations are
        buffers = [torch.empty(2**23 - 2**16).fill_(1.0) for _ in range(3)]
        del buffers

    keep_freed_memory()
    step()
    step()  # the heap settles
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        step()
    # with glibc's defaults they are trimmed and faulted in afresh: ~56,000 page faults in these three steps
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults < 2_000


def test_the_result_records_what_it_ran_on(catalog, data):
    result = fit(TINY, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=1))
    assert result.protocol["id"] == "mmsa-1+max_epochs=1"
    assert {"msabench", "torch", "python", "numpy"} <= set(result.versions)
    assert result.hardware["device"] == "cpu"
    assert result.data["synthetic"] is True and result.data["verified"] is True
    assert result.wall_time_s > 0 and result.peak_memory_mb["rss"] > 0
    assert result.method_info["paper"] == "A test method" and result.method_info["objective"] == "l1"
    assert math.isfinite(result.history[0]["train"]["total"])


def test_protocol_ids_name_their_departures():
    assert Protocol().id == "mmsa-1"
    assert Protocol(seeds=(1,)).id == "mmsa-1"
    assert Protocol(patience=3, max_epochs=6).id == "mmsa-1+patience=3+max_epochs=6"
