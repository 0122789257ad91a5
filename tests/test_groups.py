"""Batches of whole groups (the utterances of a video), an extension point a dataset (`Dataset.groups`) and a method
(`Method.batches = "groups"`) opt into; and the metrics a method reports (`Method.metrics`)."""

import contextlib
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from fakes import TINY, MeanEncoder, Plugin, TinyData
from msabench import (
    Callback,
    CatalogError,
    DataError,
    Fusion,
    Protocol,
    Reported,
    RunResult,
    Split,
    TrainingError,
    fit,
)
from msabench.api import Request, plan
from msabench.layers import Groups
from msabench.leaderboard import render_dataset
from msabench.metrics import FAMILIES
from msabench.runtime import Distributed
from msabench.schema import validate
from msabench.train import assemble, predict_batches
from test_catalog import catalog_with
from test_catalog import plugin as plugin_with

SHORT = Protocol(max_epochs=4, patience=3)
ACC2 = ("Acc-2_has0", "F1_has0")
TIME = "2026-11-23T09:30:00Z"


class GroupedData(TinyData):
    """TinyData whose samples come in groups of three (``video``), as the utterances of a video do."""

    name = "tiny-grouped"
    groups = "video"
    files = {"tiny-grouped/Processed/unaligned.pkl": None}

    def load(self):
        data = super().load()
        for split in data.splits.values():
            split.tensors["video"] = torch.arange(len(split)) // 3
        return replace(data, groups="video")


class GroupMean(Fusion):
    """Each sample's prediction from its own features and the mean of its group's (a contextual fusion)."""

    name = "group-mean"
    contextual = True

    def __init__(self, in_dims, task):
        super().__init__(in_dims, task)
        width = sum(in_dims.values())
        self.own, self.context = nn.Linear(width, task.out_dim), nn.Linear(width, task.out_dim)

    def forward(self, features, lengths, groups=None):
        x = torch.cat(list(features.values()), -1)
        found = Groups(groups if groups is not None else torch.arange(len(x)))
        padded = found.pad(x)
        mean = padded.sum(1) / found.lengths[:, None]
        return {"prediction": self.own(x) + self.context(found.flat(mean[:, None].expand_as(padded)))}


class Contextual(MeanEncoder):
    """A mean-linear encoder that reads its groups (and so needs whole-group batches)."""

    name = "contextual-linear"
    contextual = True

    def forward(self, x, lengths, groups=None):
        return super().forward(x, lengths)


GROUPED = replace(TINY, name="grouped", fusion="group-mean", batches="groups", hparams={"train": {"batch_size": 4}})


@pytest.fixture(scope="module")
def catalog():
    return catalog_with(Plugin(), plugin_with(datasets=[GroupedData], fusions=[GroupMean], methods=[GROUPED]))


@pytest.fixture(scope="module")
def data():
    return GroupedData().load()


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def split_of(groups):
    ids = [f"s{i}" for i in range(len(groups))]
    return Split("train", ids, {"x": torch.arange(len(groups)).float(), "video": torch.tensor(groups)})


# -- batches of whole groups --------------------------------------------------------------------------------


def test_a_batch_holds_whole_groups_in_split_order_with_their_local_ids():
    split = split_of([7, 7, 7, 2, 2, 9, 4, 4, 4, 4])
    batches = list(split.batches(2, groups="video"))
    assert [b["index"].tolist() for b in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert [b["group"].tolist() for b in batches] == [[0, 0, 0, 1, 1], [0, 1, 1, 1, 1]]
    assert [b.size for b in batches] == [5, 5] and split.batch_count(2, "video") == 2
    assert split.batch_count(3, "video") == 2 and split.batch_count(3) == 4  # groups, or samples
    assert split.group_bounds("video").tolist() == [0, 3, 5, 6, 10]


def test_shuffling_moves_whole_groups_with_the_seeded_generator():
    split = split_of([g for g in range(12) for _ in range(g % 3 + 1)])
    first = [b["index"].tolist() for b in split.batches(5, shuffle=True, generator=seeded(3), groups="video")]
    again = [b["index"].tolist() for b in split.batches(5, shuffle=True, generator=seeded(3), groups="video")]
    other = [b["index"].tolist() for b in split.batches(5, shuffle=True, generator=seeded(4), groups="video")]
    assert first == again and first != other
    video = split.tensors["video"]
    for indices in first:
        groups = video[indices].tolist()
        runs = [g for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g]
        assert len(runs) == len(set(runs)) <= 5  # each group once, contiguous
        for g in runs:  # whole, and in order inside
            rows = [i for i in indices if video[i] == g]
            assert rows == (video == g).nonzero().reshape(-1).tolist()
    assert sorted(i for indices in first for i in indices) == list(range(len(split)))


def test_groups_that_are_not_contiguous_or_not_there_are_refused():
    with pytest.raises(DataError, match=r"samples of group 1 \(video\) are not contiguous \(again at row 3, id s3\)"):
        list(split_of([1, 1, 2, 1]).batches(2, groups="video"))
    with pytest.raises(DataError, match=r"has no tensor 'clip' to group its samples by"):
        list(split_of([1, 2]).batches(2, groups="clip"))


# -- the shared layer ---------------------------------------------------------------------------------------


def test_groups_pad_a_flat_batch_into_sequences_and_back():
    ids = torch.tensor([5, 5, 1, 1, 1, 8])
    x = torch.arange(12.0).reshape(6, 2).requires_grad_()
    found = Groups(ids)
    padded = found.pad(x)
    assert padded.shape == (3, 3, 2) and found.lengths.tolist() == [3, 2, 1] and len(found) == 3
    assert padded[0].tolist() == [[4, 5], [6, 7], [8, 9]]  # group 1 (smallest id), its samples in batch order
    assert padded[1].tolist() == [[0, 1], [2, 3], [0, 0]] and padded[2].tolist() == [[10, 11], [0, 0], [0, 0]]
    assert torch.equal(found.flat(padded), x)
    found.flat(padded).sum().backward()
    assert torch.equal(x.grad, torch.ones(6, 2))
    alone = Groups(torch.arange(4))
    assert alone.pad(torch.ones(4, 3)).shape == (4, 1, 3) and alone.lengths.tolist() == [1, 1, 1, 1]


# -- training -----------------------------------------------------------------------------------------------


def test_a_grouped_method_trains_and_evaluates_per_sample(catalog, data):
    result = fit(GROUPED, data, catalog=catalog, seed=1111, protocol=SHORT)
    assert result.predictions["ids"] == data.splits["test"].ids  # per utterance, in split order
    assert len(result.predictions["predictions"]) == len(data.splits["test"]) == 24
    assert list(result.metrics) == list(FAMILIES["mosi"])  # no Method.metrics: all of the family's
    assert result.method_info["batches"] == "groups"
    run = assemble(GROUPED, data, catalog=catalog, seed=1, hparams={"train": {"batch_size": 4}})
    assert run.model.groups == "video"
    batches = [batch for batch, _ in predict_batches(run.model, data.splits["valid"], 3, run.device)]
    assert [b["index"].tolist() for b in batches] == [list(range(0, 9)), list(range(9, 18)), list(range(18, 24))]


def test_context_reaches_each_sample_from_its_own_group_only(catalog, data):
    run = assemble(GROUPED, data, catalog=catalog, seed=1, hparams={"train": {"batch_size": 4}})
    run.model.eval()
    split = data.splits["test"]
    (batch,) = list(split.batches(100, groups="video"))
    before = run.model(batch)["prediction"].detach()
    changed = {**batch, "text": batch["text"].clone()}
    changed["text"][4] += 5.0  # sample 4 is in group 1 (samples 3, 4, 5)
    after = run.model(type(batch)(changed))["prediction"].detach()
    moved = (after - before).abs().reshape(-1) > 1e-6
    assert moved.nonzero().reshape(-1).tolist() == [3, 4, 5]


class StopAt(Callback):
    def on_epoch_start(self, run, epoch):
        if epoch == 3:
            raise KeyboardInterrupt


def test_a_grouped_run_resumes_bit_identically(catalog, data, tmp_path):
    whole = fit(GROUPED, data, catalog=catalog, seed=7, protocol=SHORT)
    state = tmp_path / "seed-7.resume.pt"
    with contextlib.suppress(KeyboardInterrupt):
        fit(GROUPED, data, catalog=catalog, seed=7, protocol=SHORT, state=state, callbacks=(StopAt(),))
    resumed = fit(GROUPED, data, catalog=catalog, seed=7, protocol=SHORT, state=state)
    assert resumed.history == whole.history and resumed.predictions == whole.predictions


def test_a_grouped_model_refuses_batches_of_samples_and_distributed_runs(catalog, data):
    run = assemble(GROUPED, data, catalog=catalog, seed=1, hparams={"train": {"batch_size": 4}})
    with pytest.raises(ValueError, match=r"batches whole groups of samples \(by 'video'\)"):
        run.model(next(data.splits["train"].batches(4)))
    with pytest.raises(TrainingError, match="not split across the processes of a distributed run"):
        assemble(GROUPED, data, catalog=catalog, seed=1, hparams={}, distributed=Distributed(0, 2))


# -- the catalog's checks -----------------------------------------------------------------------------------


def test_a_grouped_method_on_data_without_groups_is_refused_before_any_data_loads(catalog, tmp_path):
    with pytest.raises(CatalogError) as error:
        plan(Request(method="grouped", dataset="tiny-data", data_root=str(tmp_path / "none")), catalog=catalog)
    message = str(error.value)
    assert "\n" not in message and "dataset 'tiny-data' declares no groups" in message
    assert "datasets with groups: tiny-grouped" in message


def test_contextual_components_need_a_grouped_method():
    loose = replace(GROUPED, name="loose", batches="samples")
    encoded = replace(TINY, name="encoded", encoders={**TINY.encoders, "text": "contextual-linear"})
    odd = replace(GROUPED, name="odd", batches="videos")
    catalog = catalog_with(
        Plugin(), plugin_with(fusions=[GroupMean], encoders=[Contextual], methods=[loose, encoded, odd])
    )
    with pytest.raises(CatalogError, match=r"fusion 'group-mean' read the other samples .* set batches=\"groups\""):
        catalog.methods["loose"]
    with pytest.raises(CatalogError, match=r"encoder 'contextual-linear' read the other samples"):
        catalog.methods["encoded"]
    with pytest.raises(CatalogError, match=r"batches='videos'; use one of samples, groups"):
        catalog.methods["odd"]


def test_a_contextual_encoder_with_a_fingerprint_is_refused():
    class Fingerprinted(Contextual):
        name = "fingerprinted"

        def fingerprint(self):
            return {"class": "x"}

    catalog = catalog_with(Plugin(), plugin_with(encoders=[Fingerprinted]))
    assert "fingerprinted" not in catalog.encoders
    assert any("contextual and defines fingerprint()" in p.message for p in catalog.problems)


def test_declared_metrics_are_checked():
    unknown = replace(TINY, name="unknown", metrics=("Acc-9",))
    selects = replace(TINY, name="selects", metrics=ACC2, key_metric="MAE")
    sims = replace(TINY, name="sims-only", metrics=("Acc-2", "F1"))
    catalog = catalog_with(Plugin(), plugin_with(methods=[unknown, selects, sims]))
    with pytest.raises(CatalogError, match=r"reports unknown metrics \['Acc-9'\]"):
        catalog.methods["unknown"]
    with pytest.raises(CatalogError, match=r"selects on \['MAE'\], which it does not report"):
        catalog.methods["selects"]
    with pytest.raises(CatalogError, match="reports Acc-2, F1, which mosi datasets do not have"):
        catalog.check(catalog.methods["sims-only"], TinyData)


# -- the metrics a method reports -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(data):
    method = replace(GROUPED, name="grouped-acc2", metrics=ACC2, reported=(Reported("tiny-grouped", "T1", {}),))
    catalog = catalog_with(Plugin(), plugin_with(datasets=[GroupedData], fusions=[GroupMean], methods=[method]))
    result = fit(method, data, catalog=catalog, seed=1111, protocol=SHORT)
    command = "msabench run --method grouped-acc2 --dataset tiny-grouped"  # what `msabench.run` records
    return replace(result, request={"command": command, "commit": None, "timestamp": TIME, "threads": 1})


def test_a_method_reports_only_its_declared_metrics(classifier):
    assert list(classifier.metrics) == list(ACC2) and classifier.method_info["metrics"] == list(ACC2)
    assert set(classifier.valid_metrics) == {"loss", *ACC2}
    assert all(set(epoch["valid"]) == {"loss", *ACC2} for epoch in classifier.history)
    stored = json.loads(json.dumps(classifier.to_dict()))
    assert validate(stored) == []
    stored["metrics"]["MAE"] = 0.5
    assert validate(stored) == ["metrics: holds Acc-2_has0, F1_has0, MAE; the method reports exactly Acc-2_has0, "
                                "F1_has0 (method_info.metrics)"]  # fmt: skip
    del stored["method_info"]["metrics"]
    assert "metrics: 'Acc-2_non0' is a required property" in validate(stored)


def test_the_leaderboard_shows_a_dash_for_metrics_a_method_does_not_report(classifier):
    page = render_dataset("tiny-grouped", [classifier, replace(classifier, method="other", metrics={
        **classifier.metrics, "Acc-2_non0": 0.5, "F1_non0": 0.5, "Acc-3": 0.5, "Acc-5": 0.5, "Acc-7": 0.5,
        "MAE": 1.0, "Corr": 0.1}, method_info={})])  # fmt: skip
    row = next(line for line in page.splitlines() if line.startswith("| grouped-acc2"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:10] == ["—"] * 7 and "%" not in cells[1] and cells[1] != "—"
    assert "— the method does not report this metric (`Method.metrics`)" in page
    other = next(line for line in page.splitlines() if line.startswith("| other"))
    assert "—" not in other


def test_verify_recomputes_only_the_declared_metrics(classifier, tmp_path):
    from msabench.verify import verify

    path = classifier.save(tmp_path / "tiny-grouped" / "grouped-acc2" / "mmsa-1" / "seed-1111.json")
    report = verify(tmp_path, data_root=tmp_path / "none")
    assert report.files[0].status("metrics") == "pass"
    edited = RunResult.load(path)
    edited.metrics["F1_has0"] = 0.0
    edited.save(path)
    (file,) = verify(tmp_path, data_root=tmp_path / "none").files
    (outcome,) = [o for o in file.outcomes if o.check == "metrics"]
    assert outcome.status == "fail" and outcome.message.startswith("F1_has0 is stored as 0")
