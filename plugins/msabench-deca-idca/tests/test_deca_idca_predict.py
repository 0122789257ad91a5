"""`msabench predict` repeats a DECA/IDCA run's own batched evaluation: the attention mixes the samples of a
batch, so predictions are only reproducible in the run's order and evaluation batch size."""

import copy

import pytest

from msabench import Catalog, Protocol, Split, fit, get_plugin_manager
from msabench.inference import load_run, predict
from msabench.results import result_path
from msabench.testing import TinyImageText
from msabench_core.clip import TINY_CONFIG as CLIP_TINY


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


class PredictTheTestSplit(TinyImageText):
    """Tiny tweets whose inputs to predict are the test split's, without labels."""

    def unlabelled(self):
        test = self.load().splits["test"]
        return Split("predict", test.ids, {k: v for k, v in test.tensors.items() if k != "label"}, test.raw)


def test_predict_repeats_the_runs_own_batched_evaluation():
    """DECA/IDCA predictions depend on the batch; predicting the test split's samples in its order with the
    run's evaluation batch size gives exactly the run's test predictions."""
    catalog = Catalog.from_plugins(get_plugin_manager())
    dataset = PredictTheTestSplit()
    data = dataset.load()
    method = catalog.methods["deca-idca"]
    hparams = method.hparams_for(data)
    hparams["text"]["config"] = hparams["image"]["config"] = CLIP_TINY
    hparams["fusion"].update(low_dim=4, high_dim=12, hidden=8)
    hparams["train"].update(eval_batch_size=3, lr=3e-2)  # at this rate the tiny model predicts all three classes
    protocol = Protocol(max_epochs=2)
    path = result_path("results", data.name, "deca-idca", 1111, protocol=protocol.id)
    result = fit(
        method,
        data,
        catalog=catalog,
        seed=1111,
        protocol=protocol,
        hparams=hparams,
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    )
    result.save(path)
    checkpoint, loaded = load_run(path)
    predictions = predict(checkpoint, loaded, dataset, catalog, device="cpu")
    assert predictions.batch_size == 3 and predictions.ids == result.predictions["ids"] == data.splits["test"].ids
    assert predictions.labels == [data.task.classes[int(i)] for i in result.predictions["predictions"]]
    assert len(set(predictions.labels)) > 1
    one_batch = copy.deepcopy(checkpoint)
    one_batch["hparams"]["train"]["eval_batch_size"] = len(data.splits["test"])
    assert predict(one_batch, loaded, dataset, catalog, device="cpu").labels != predictions.labels  # what this guards
