"""The reference rows against hand-computed values: the majority's constant, and the linear row against the
closed-form ridge solution on data it can fit."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from msabench import PROTOCOL, Catalog, Data, Split, Task, fit, get_plugin_manager
from msabench.testing import TinyIEMOCAP, TinyImageText, TinyMSA, tiny_data
from msabench_reference import constant

MOSI = Task("regression", "mosi", (-3.0, 3.0))
CLASSES = Task("classification", "classification", classes=("negative", "neutral", "positive"))


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


def test_the_best_constant_of_each_task():
    assert constant(MOSI, torch.tensor([3.0, -1.0, 0.5, 2.0])).tolist() == [1.25]  # the median
    logits = constant(CLASSES, torch.tensor([2, 2, 0, 2, 1]))
    assert logits.tolist() == pytest.approx(np.log([2 / 8, 2 / 8, 4 / 8]).tolist()) and int(logits.argmax()) == 2
    assert int(constant(CLASSES, torch.tensor([1, 0])).argmax()) == 0  # a tie: the lowest class id
    emotions = Task("multilabel", "iemocap", classes=("happy", "sad"))
    pairs = constant(emotions, torch.tensor([[1, 0], [1, 0], [0, 0]])).reshape(2, 2)
    assert pairs.argmax(1).tolist() == [1, 0] and pairs[0].tolist() == pytest.approx(np.log([2 / 5, 3 / 5]).tolist())


def run(catalog, method, data, **protocol):
    return fit(method, data, catalog=catalog, seed=1111, protocol=replace(PROTOCOL, **protocol), device="cpu")


def test_majority_predicts_the_train_median_and_never_moves(catalog):
    data = tiny_data(TinyMSA)
    result = run(catalog, catalog.methods["majority"], data)
    median = float(np.median(data.splits["train"].tensors["label"].numpy()))
    assert result.predictions["predictions"] == pytest.approx([median] * len(data.splits["test"]))
    assert result.best_epoch == 1 and result.epochs == 1 + PROTOCOL.patience  # the validation loss never improves
    assert np.isnan(result.metrics["Corr"])  # a constant prediction has no correlation
    mae = np.abs(data.splits["test"].tensors["label"].numpy() - median).mean()
    assert result.metrics["MAE"] == pytest.approx(mae, rel=1e-6)


def test_majority_predicts_the_train_majority_class_and_per_emotion_majorities(catalog):
    majority = catalog.methods["majority"]
    data = tiny_data(TinyImageText)
    result = run(catalog, majority.with_components({"text": "ignore-text"}), data, max_epochs=2)
    counts = np.bincount(data.splits["train"].tensors["label"].numpy(), minlength=3)
    assert set(result.predictions["predictions"]) == {int(counts.argmax())}
    assert majority.for_dataset("mvsa-single").encoders == {"text": "ignore-text"}  # lab5 and lab5-dev's hparams_from
    emotions = tiny_data(TinyIEMOCAP)
    result = run(catalog, majority, emotions, max_epochs=2)
    expected = (emotions.splits["train"].tensors["label"].float().mean(0) > 0.5).long().tolist()
    assert {tuple(p) for p in result.predictions["predictions"]} == {tuple(expected)}


def toy(n=(200, 60, 60), seed=0):
    """Length-1 text/audio/vision features on very different scales, y linear in them plus noise."""
    rng = np.random.default_rng(seed)
    weights = {"text": np.array([0.5, -0.3]), "audio": np.array([0.002]), "vision": np.array([0.0, 0.2])}
    scales = {"text": 1.0, "audio": 200.0, "vision": 3.0}
    splits = {}
    for name, size in zip(("train", "valid", "test"), n, strict=True):
        x = {m: rng.normal(size=(size, len(w))) * scales[m] + 5 for m, w in weights.items()}
        y = sum((x[m] - 5) @ w for m, w in weights.items()) + 0.05 * rng.normal(size=size)
        tensors = {m: torch.tensor(v, dtype=torch.float32)[:, None] for m, v in x.items()}
        tensors |= {f"{m}_lengths": torch.ones(size, dtype=torch.long) for m in x}
        assert np.abs(y).max() < 3  # inside MOSI's label range: nothing is clipped
        tensors["label"] = torch.tensor(y, dtype=torch.float32)
        splits[name] = Split(name, [f"{name}-{i}" for i in range(size)], tensors)
    return Data("toy", MOSI, splits, {"source": "generated", "files": {}, "verified": True}, synthetic=True)


def ridge(data, penalty):
    """The closed-form ridge fit on standardised train features (intercept unpenalised) -> test predictions."""

    def features(split):
        return np.concatenate([data.splits[split].tensors[m][:, 0].numpy() for m in ("text", "audio", "vision")], 1)

    x, y = features("train").astype(np.float64), data.splits["train"].tensors["label"].numpy().astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    z = (x - mean) / std
    w = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return ((features("test") - mean) / std) @ w + y.mean()


def test_linear_reaches_the_ridge_solution(catalog):
    data = toy()
    linear = catalog.methods["linear"]
    hparams = linear.hparams_for(data)
    hparams["train"]["batch_size"] = 50
    result = fit(linear, data, catalog=catalog, seed=1111, hparams=hparams, device="cpu")
    # Adam with coupled weight decay wd stops where 2/N Z^T(Zw + b - y) + wd w = 0: ridge with penalty N wd / 2
    expected = ridge(data, penalty=200 * hparams["train"]["weight_decay"] / 2)
    assert np.allclose(result.predictions["predictions"], expected, atol=0.02)
    assert result.metrics["Corr"] > 0.99


def test_linear_standardises_with_the_train_split_and_starts_from_the_intercept(catalog):
    from msabench.train import assemble

    data = toy()
    linear = catalog.methods["linear"]
    run_ = assemble(linear, data, catalog=catalog, seed=1, hparams=linear.hparams_for(data), device="cpu")
    fusion = run_.model.fusion
    fusion.on_fit_start(run_)
    train = torch.cat([data.splits["train"].tensors[m][:, 0] for m in ("text", "audio", "vision")], 1)
    assert torch.allclose(fusion.mean, train.mean(0)) and torch.allclose(fusion.scale, train.std(0, unbiased=False))
    assert fusion.linear.weight.abs().sum() == 0
    assert float(fusion.linear.bias.detach()) == pytest.approx(float(data.splits["train"].tensors["label"].mean()))
