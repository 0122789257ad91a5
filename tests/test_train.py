"""fit(): seeding, validation-only selection, patience, the single test evaluation, callbacks, checkpoints."""

import math
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from fakes import TINY, ConcatFusion, Plugin, TinyData
from msabench import Callback, Objective, Protocol, Task, TrainingError, fit
from msabench.metrics import EMOTIONS, FAMILIES
from msabench.optim import build_optimizer
from msabench.train import assemble, train_epoch
from test_catalog import catalog_with
from test_catalog import plugin as plugin_with

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


def test_a_dataset_can_have_its_own_key_metric(catalog, data):
    per_dataset = replace(TINY, key_metric="MAE", key_metrics={"tiny-data": "Corr", "other": "Acc-7"})
    assert per_dataset.key_metric_for(data) == "Corr" and per_dataset.key_metric_for(replace(data, name="x")) == "MAE"
    result = fit(per_dataset, data, catalog=catalog, seed=1111, protocol=SHORT)
    corrs = [epoch["valid"]["Corr"] for epoch in result.history]
    assert result.best_epoch == 1 + corrs.index(max(corrs)) and result.method_info["key_metric"] == "Corr"
    with pytest.raises(Exception, match="selects on unknown metric 'Nope'"):
        catalog.check_method(replace(TINY, key_metrics={"tiny-data": "Nope"}), "method 'tiny'")


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


FAULTS = """
import ctypes, resource, sys, torch
from msabench.runtime import keep_freed_memory

def step():  # three 32 MB buffers, freed together, as a training step's activations are
    buffers = [torch.empty(2**23 - 2**16).fill_(1.0) for _ in range(3)]
    del buffers

if sys.argv[1] == "keep":
    keep_freed_memory()
else:  # glibc's starting mmap threshold (128 KiB), pinned: left alone, it adapts to the process's earlier frees
    ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)
step()
step()  # the heap settles
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_training_buffers_are_reused_without_page_faults():
    def faults(mode):  # a fresh process each: the test process's heap has a history
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as fit() runs (with more, torch's pool changes the picture)
        done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True, env=env)
        return int(done.stdout)

    default, kept = faults("default"), faults("keep")
    # glibc's defaults map and unmap each buffer, which faults in afresh: ~240,000 page faults in ten steps; kept, at
    # most about one buffer's 8,000 pages (once, on a busy machine)
    assert default > 60_000 and kept < default / 5, (default, kept)


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


# -- extension points ------------------------------------------------------------------------------


class Steps(Callback):
    """Records every call, with what the trainer shows at that point."""

    def __init__(self):
        self.calls = []

    def on_fit_start(self, run):
        self.calls.append("fit_start")

    def on_epoch_start(self, run, epoch):
        self.calls.append(f"epoch_start {epoch}")

    def on_before_backward(self, run, batch, losses):
        assert losses["total"].requires_grad
        assert all(p.grad is None for p in run.model.parameters())  # backward has not run yet
        self.calls.append("before_backward")

    def on_after_backward(self, run, batch):
        assert any(p.grad is not None for p in run.model.parameters())
        self.calls.append("after_backward")

    def on_epoch_end(self, run, epoch, logs):
        self.calls.append(f"epoch_end {epoch}")


def test_step_hooks_run_around_backward_for_every_batch(catalog, data):
    steps = Steps()
    fit(TINY, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=1), callbacks=(steps,))
    batches = ["before_backward", "after_backward"] * 3  # 48 train samples, batches of 16
    assert steps.calls == ["fit_start", "epoch_start 1", *batches, "epoch_end 1"]


def test_accumulated_gradients_equal_one_big_batch():
    """Two batches of 8 accumulated give the step of one batch of 16 (same samples, no dropout)."""
    catalog = catalog_with(Plugin())
    data = TinyData().load()
    small = {"train": {"batch_size": 8, "accumulate": 2, "lr": 0.1, "optimizer": "sgd"}}
    big = {"train": {"batch_size": 16, "lr": 0.1, "optimizer": "sgd"}}
    runs = [assemble(TINY, data, catalog=catalog, seed=3, hparams=hparams) for hparams in (small, big)]
    for run in runs:
        train_epoch(run)
    assert runs[0].step == 3 and runs[1].step == 3  # 48 samples: 6 batches in 3 groups, or 3 batches
    first, second = (dict(run.model.state_dict()) for run in runs)
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-6)


def test_a_last_short_accumulation_group_still_steps():
    catalog = catalog_with(Plugin())
    run = assemble(
        TINY, TinyData().load(), catalog=catalog, seed=1, hparams={"train": {"batch_size": 16, "accumulate": 2}}
    )
    train_epoch(run)
    assert run.step == 2  # three batches: a group of two, then one


def test_warmup_then_plateau_reduce_the_learning_rate(catalog, data):
    lrs = []

    class Watch(Callback):
        def on_epoch_end(self, run, epoch, logs):
            lrs.append(run.optimizer.param_groups[0]["lr"])

    hparams = {"train": {"batch_size": 16, "lr": 0.01, "warmup_steps": 6, "plateau_patience": 0, "plateau_factor": 0.5}}
    fit(TINY, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=4), hparams=hparams, callbacks=(Watch(),))
    assert lrs[0] == pytest.approx(0.01 * 4 / 6)  # after 3 of 6 warm-up steps, the 4th step's rate
    assert lrs[1] == pytest.approx(0.01)  # warm-up done
    assert all(later <= earlier for earlier, later in zip(lrs[1:], lrs[2:], strict=False))


def test_plateau_halves_the_rate_after_epochs_without_improvement(catalog, data):
    lrs = []

    class Watch(Callback):
        def on_epoch_end(self, run, epoch, logs):
            lrs.append(run.optimizer.param_groups[0]["lr"])

    hparams = {"train": {"batch_size": 16, "lr": 0.0, "plateau_patience": 1, "plateau_factor": 0.5}}
    fit(TINY, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=4), hparams=hparams, callbacks=(Watch(),))
    assert lrs == [0.0, 0.0, 0.0, 0.0]  # never improves; the rate stays 0 whatever the factor
    scheduler = assemble(TINY, data, catalog=catalog, seed=1, hparams=hparams).schedulers["plateau"]
    assert scheduler.factor == 0.5 and scheduler.patience == 1 and scheduler.mode == "min"


class Weighted(ConcatFusion):
    """A fusion with modality weights it updates itself (a callback), kept out of the trainer's optimizer."""

    name = "weighted"

    def __init__(self, in_dims, task, dropout: float = 0.0):
        super().__init__(in_dims, task, dropout)
        self.weights = torch.nn.Parameter(torch.ones(len(in_dims)))
        self.updates = 0

    def manual_parameters(self):
        return [self.weights]

    def forward(self, features, lengths):
        scaled = [w * f for w, f in zip(self.weights, features.values(), strict=True)]
        return {"prediction": self.linear(torch.cat(scaled, -1))}


class SelfUpdating(Weighted, Callback):
    name = "self-updating"

    def on_after_backward(self, run, batch):
        with torch.no_grad():
            self.weights -= 0.1 * self.weights.grad
        self.weights.grad = None
        self.updates += 1


def test_manual_parameters_stay_out_of_the_optimizer_and_a_fusion_callback_updates_them():
    method = replace(TINY, name="self-updating", fusion="self-updating")
    catalog = catalog_with(Plugin(), plugin_with(fusions=[SelfUpdating], methods=[method]))
    run = assemble(method, TinyData().load(), catalog=catalog, seed=1, hparams={"train": {"batch_size": 16}})
    optimised = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert id(run.model.fusion.weights) not in optimised and len(optimised) == len(list(run.model.parameters())) - 1
    assert run.callbacks == [run.objective, run.model.fusion]  # the fusion is called back, after the objective
    train_epoch(run)
    assert run.model.fusion.updates == 3 and not torch.equal(run.model.fusion.weights, torch.ones(3))


def test_per_sample_objective_state_is_indexed_by_rows_and_resumed(catalog, data, tmp_path):
    class Seen(Objective):
        """L1, counting how often each training row was seen (per-sample state, as label generation keeps)."""

        name = "seen"

        def on_fit_start(self, run):
            self.register_buffer("counts", torch.zeros(len(run.data.splits["train"]), dtype=torch.long))

        def forward(self, outputs, batch):
            if self.training:
                self.counts[batch["index"]] += 1
            return {"total": (outputs["prediction"].reshape(-1) - batch["label"]).abs().mean()}

    method = replace(TINY, name="counting", objective="seen")
    catalog = catalog_with(Plugin(), plugin_with(objectives=[Seen], methods=[method]))
    run = assemble(method, data, catalog=catalog, seed=1, hparams={"train": {"batch_size": 16}})
    run.objective.on_fit_start(run)
    train_epoch(run)
    train_epoch(run)
    assert run.objective.counts.tolist() == [2] * 48  # every row once per epoch, addressed by batch["index"]


def test_a_multilabel_task_is_evaluated_per_entry():
    data = TinyData().load()
    for split in data.splits.values():  # four binary decisions from the regression label
        score = split.tensors["label"]
        split.tensors["label"] = torch.stack([(score > t).long() for t in (-1.0, -0.3, 0.3, 1.0)], -1)
    data = replace(data, task=Task("multilabel", "iemocap", classes=EMOTIONS))
    method = replace(TINY, name="emotional", objective="cross-entropy", tasks=("multilabel",))
    catalog = catalog_with(Plugin(), plugin_with(methods=[method]))
    result = fit(method, data, catalog=catalog, seed=1, protocol=Protocol(max_epochs=2))
    assert list(result.metrics) == list(FAMILIES["iemocap"])
    assert len(result.predictions["predictions"][0]) == 4 and set(result.predictions["labels"][0]) <= {0, 1}
    assert result.predictions["labels"] == data.splits["test"].tensors["label"].tolist()
    assert 0 <= result.metrics["Acc_mean"] <= 1


def test_the_resume_state_is_refused_for_another_run(catalog, data, tmp_path):
    state = tmp_path / "seed-1.resume.pt"

    class Stop(Callback):
        def on_epoch_start(self, run, epoch):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(TINY, data, catalog=catalog, seed=1, protocol=SHORT, state=state, callbacks=(Stop(),))
    assert state.is_file()
    other = {"train": {"batch_size": 16, "lr": 0.5}}
    with pytest.raises(
        TrainingError, match=r"was written by a run with other hparams; rerun that command .*--overwrite"
    ):
        fit(TINY, data, catalog=catalog, seed=1, protocol=SHORT, hparams=other, state=state)
    resumed = fit(TINY, data, catalog=catalog, seed=1, protocol=SHORT, state=state)
    whole = fit(TINY, data, catalog=catalog, seed=1, protocol=SHORT)
    assert resumed.metrics == whole.metrics and resumed.history == whole.history
    assert resumed.predictions == whole.predictions and state.exists()  # the caller deletes it once the result is saved


def test_adadelta_takes_zeilers_decay_and_the_learning_rate(catalog, data):
    model, objective = catalog.build(TINY, data, {})
    optimizer = build_optimizer(model, objective, {"optimizer": "adadelta", "lr": 1.0})
    assert isinstance(optimizer, torch.optim.Adadelta)
    assert optimizer.defaults["rho"] == 0.95 and optimizer.defaults["lr"] == 1.0 and optimizer.defaults["eps"] == 1e-6
