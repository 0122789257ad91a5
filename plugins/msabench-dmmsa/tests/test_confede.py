"""ConFEDE's objective: its pair tables against the released code's index tuples, neighbour retrieval and drawing
on hand-made examples, the contrastive loss against a plain loop over the pairs, and the neighbours going through
the model during training only."""

import math

import pytest
import torch

from msabench import Batch, Catalog, Protocol, Task, fit, get_plugin_manager
from msabench.testing import TinyMSA, tiny_hparams
from msabench_dmmsa.confede import (
    INTER_NEGATIVES,
    INTRA_NEGATIVES,
    POSITIVES,
    ConFEDE,
    contrast,
    draw,
    label_classes,
    neighbour_lists,
)

MOSI = Task("regression", "mosi", (-3.0, 3.0))


def test_the_pairs_are_those_of_confedes_released_code():
    # XpastaX/ConFEDE, {SIMS,MOSI,MOSEI}/model/net/constrastive/TVA_fusion.py: the indices_tuple (t1, p, t2, n).
    t1 = [0, 0, 7, 7, 14, 14, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    p = [1, 2, 8, 9, 15, 16, 7, 14, 8, 15, 9, 16, 10, 17, 11, 18, 12, 19, 13, 20]
    t2 = [0, 0, 0, 0, 7, 7, 7, 7, 14, 14, 14, 14, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]
    n = [3, 4, 5, 6, 10, 11, 12, 13, 17, 18, 19, 20, 21, 28, 35, 22, 29, 36, 23, 30, 37, 24, 31, 38, 25, 32, 39]
    n += [26, 33, 40, 27, 34, 41]
    assert sorted(POSITIVES) == sorted(zip(t1, p, strict=True))
    assert sorted(INTER_NEGATIVES + INTRA_NEGATIVES) == sorted(zip(t2, n, strict=True))
    assert len(INTER_NEGATIVES) == 12 and all(a in (0, 7, 14) for a, _ in INTER_NEGATIVES)


def test_label_classes_round_mosi_and_keep_sims():
    assert label_classes(torch.tensor([-1.4, -0.6, 0.4, 2.6]), "mosi").tolist() == [-1, -1, 0, 3]
    sims = label_classes(torch.tensor([0.2, 0.2000001, 0.4, -0.2]), "sims")
    assert sims[0] == sims[1] and len(set(sims.tolist())) == 3


def test_neighbour_lists_by_hand():
    # Six samples on a circle; sample 0 is closest to 1, then 2, ...; classes a a b b a b.
    angles = torch.tensor([0.0, 0.3, 0.7, 1.2, 2.5, 3.0])
    embeddings = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    classes = torch.tensor([0, 0, 1, 1, 0, 1])
    lists = neighbour_lists(embeddings, classes, count=2)
    # Anchor 0: others by similarity 1, 2, 3, 4, 5; the more similar half (3 of 6) is 1, 2, 3 (the anchor is last).
    assert lists[0, 0].tolist() == [1, -1]  # ss: same class in the similar half
    assert lists[0, 1].tolist() == [5, 3]  # dd: other class, least similar first, from the less similar half
    assert lists[0, 2].tolist() == [2, 3]  # sd: other class in the similar half
    assert (lists[:, 0] != torch.arange(6)[:, None]).all()  # never the anchor itself
    assert neighbour_lists(embeddings, classes, count=2, chunk=4).equal(lists)  # chunking changes nothing


def test_draw_takes_two_distinct_of_each_list_with_its_own_generator():
    lists = torch.tensor([[[1, 2, 3], [4, 5, -1], [6, -1, -1]], [[-1, -1, -1], [7, 8, 9], [1, 2, -1]]])
    first = draw(lists, torch.tensor([0, 1]), 10, torch.Generator().manual_seed(0))
    again = draw(lists, torch.tensor([0, 1]), 10, torch.Generator().manual_seed(0))
    assert first.equal(again) and first.shape == (2, 6)
    ss, dd, sd = first[0, :2].tolist(), first[0, 2:4].tolist(), first[0, 4:].tolist()
    assert len(set(ss)) == 2 and set(ss) <= {1, 2, 3} and sorted(dd) == [4, 5] and sd == [6, 6]  # one: twice
    assert all(0 <= i < 10 for i in first[1, :2].tolist())  # an empty list draws from the whole split
    draws = {
        tuple(draw(lists, torch.tensor([0]), 10, torch.Generator().manual_seed(s))[0, :2].tolist()) for s in range(20)
    }
    assert len(draws) > 1


def naive_contrast(features, labels, temperature, label_weighted):
    """ConFEDE's NT-Xent written out pair by pair."""
    total = 0.0
    for b in range(features.shape[0]):
        f = torch.nn.functional.normalize(features[b], dim=-1)
        terms = []
        for a, p in POSITIVES:
            pos = math.exp(float(f[a] @ f[p]) / temperature)
            neg = 0.0
            for negatives, weighted in ((INTER_NEGATIVES, label_weighted), (INTRA_NEGATIVES, False)):
                for a2, n in negatives:
                    if a2 == a:
                        w = abs(float(labels[b, a2] - labels[b, n])) / 2 if weighted else 1.0
                        neg += math.exp(w * float(f[a2] @ f[n]) / temperature)
            terms.append(-math.log(pos / (pos + neg)))
        total += sum(terms) / len(terms)
    return total / features.shape[0]


@pytest.mark.parametrize("label_weighted", [True, False])
def test_the_contrast_matches_the_pairs_written_out(label_weighted):
    torch.manual_seed(0)
    features = torch.randn(3, 42, 5, dtype=torch.float64)
    labels = torch.randn(3, 7, dtype=torch.float64).repeat(1, 6)
    expected = naive_contrast(features, labels, 0.5, label_weighted)
    assert contrast(features, labels, 0.5, label_weighted).item() == pytest.approx(expected, rel=1e-9)
    if label_weighted:  # equal labels: inter-sample negatives weigh nothing (w = 0), intra-sample ones still count
        flat = torch.zeros(3, 42, dtype=torch.float64)
        assert contrast(features, flat, 0.5, True).item() != pytest.approx(contrast(features, flat, 0.5, False).item())


def test_training_steps_contrast_retrieved_neighbours_and_evaluation_uses_the_samples_alone():
    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods["confede"]
    data = TinyMSA().load()
    hparams = tiny_hparams(catalog, method, TinyMSA)
    calls = []

    class Counting(ConFEDE):
        def neighbour_batch(self, batch):
            others = super().neighbour_batch(batch)
            calls.append((len(batch["index"]), len(others["index"])))
            return others

    catalog.objectives.entries["confede"] = (Counting, catalog.objectives.plugin("confede"))
    result = fit(method, data, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=2), hparams=hparams)
    assert calls and all(others == 6 * size for size, others in calls)  # six neighbours per anchor, every step
    assert len(calls) == 2 * math.ceil(len(data.splits["train"]) / hparams["train"]["batch_size"])
    assert all(epoch["train"]["cl"] > 0 for epoch in result.history)
    objective = Counting(MOSI)  # no run: as in evaluation, the samples alone and no contrast
    outputs = {
        "prediction": torch.zeros(2, 1),
        "unimodal": torch.zeros(2, 2, 3),
        "similar": torch.randn(2, 3, 4),
        "dissimilar": torch.randn(2, 3, 4),
    }
    losses = objective(outputs, Batch(label=torch.tensor([1.0, -1.0]), index=torch.arange(2)))
    assert losses["cl"].item() == 0 and losses["msr"].item() == pytest.approx(1.0)
    assert losses["total"].item() == pytest.approx(1.0 + 0.01 * 1.0)
