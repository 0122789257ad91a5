"""DECA and IDCA scores against hand-computed values, the attention block, the ablations, the weights,
and the batch dependence the paper's design implies."""

import math

import pytest
import torch

from msabench import Task
from msabench_deca_idca import METHODS
from msabench_deca_idca.fusion import (
    BatchCrossAttention,
    DualCrossAttention,
    adaptive_weights,
    deca_logits,
    deca_scores,
    idca_scores,
)

TASK = Task("classification", "classification", classes=("negative", "neutral", "positive"))
Q = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
K = torch.tensor([[1.0, 2.0], [0.5, 0.5]])


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_deca_scores_by_hand():
    # (0,0): |2-1| s(3) + |1-2| s(3);  (0,1): |2-.5| s(2.5) + |1-.5| s(1.5)
    # (1,0): |1-1| s(2) + |3-2| s(5);  (1,1): |1-.5| s(1.5) + |3-.5| s(3.5)
    by_hand = [
        [math.exp(-(1 * sigmoid(3) + 1 * sigmoid(3))), math.exp(-(1.5 * sigmoid(2.5) + 0.5 * sigmoid(1.5)))],
        [math.exp(-(0 * sigmoid(2) + 1 * sigmoid(5))), math.exp(-(0.5 * sigmoid(1.5) + 2.5 * sigmoid(3.5)))],
    ]
    torch.testing.assert_close(deca_scores(Q, K), torch.tensor(by_hand))
    torch.testing.assert_close(
        deca_scores(Q, K), torch.tensor([[0.148801, 0.166127], [0.370350, 0.058689]]), atol=1e-6, rtol=0
    )


def test_idca_scores_by_hand():
    # sum_d q*k*relu(q-k): (0,0) 2*1*1 + 1*2*0 = 2; (0,1) 2*.5*1.5 + 1*.5*.5 = 1.75; (1,0) 0 + 3*2*1 = 6;
    # (1,1) 1*.5*.5 + 3*.5*2.5 = 4
    torch.testing.assert_close(idca_scores(Q, K), torch.tensor([[2.0, 1.75], [6.0, 4.0]]))


def attend_with_identity_projections(logits, weights: torch.Tensor) -> None:
    """The block with W_q = W_k = W_v = I gives LayerNorm(Q + weights @ Q) (values are the query's own features)."""
    block = BatchCrossAttention(2, logits)
    with torch.no_grad():
        for linear in (block.q, block.k, block.v):
            linear.weight.copy_(torch.eye(2))
            linear.bias.zero_()
    mixed = Q + weights @ Q
    expected = (mixed - mixed.mean(-1, keepdim=True)) / torch.sqrt(mixed.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(block(Q, K), expected)


def test_idca_attention_is_the_softmax_of_its_scores():
    attend_with_identity_projections(idca_scores, torch.softmax(torch.tensor([[2.0, 1.75], [6.0, 4.0]]), dim=-1))


def test_deca_attention_normalises_its_scores_over_the_keys():
    scores = deca_scores(Q, K)
    attend_with_identity_projections(deca_logits, scores / scores.sum(-1, keepdim=True))  # exp(-d) / sum_k exp(-d)


def test_deca_attention_is_not_uniform_at_the_recipe_width():
    torch.manual_seed(0)
    block = BatchCrossAttention(256, deca_logits)
    q, k = torch.randn(32, 256), torch.randn(32, 256)
    attention = torch.softmax(block.logits(block.q(q), block.k(k)), dim=-1)
    assert (attention.max(-1).values - attention.min(-1).values).min() > 1e-3


def fusion(**hparams):
    torch.manual_seed(0)
    return DualCrossAttention({"text": 6, "image": 5}, TASK, low_dim=4, high_dim=8, hidden=8, **hparams).eval()


def test_predictions_depend_on_the_batch_unless_attention_is_removed():
    torch.manual_seed(1)
    text, image = torch.randn(5, 6), torch.randn(5, 5)
    first, other = [0, 1, 2], [0, 3, 4]
    for attention, depends in (("both", True), ("deca", True), ("idca", True), ("none", False)):
        model = fusion(attention=attention)
        with torch.no_grad():
            a = model({"text": text[first], "image": image[first]}, {})["prediction"][0]
            b = model({"text": text[other], "image": image[other]}, {})["prediction"][0]
            alone = model({"text": text[:1], "image": image[:1]}, {})["prediction"][0]
        assert (not torch.allclose(a, b)) == depends, attention
        assert torch.allclose(a, alone) != depends, attention


def test_no_attention_is_the_weighted_concatenation_of_the_projections():
    model = fusion(attention="none", weights=[1.2, 0.7, 0.3])
    text, image = torch.randn(3, 6), torch.randn(3, 5)
    with torch.no_grad():
        t_low, v_low, t_high, v_high = (
            model.text_low(text),
            model.image_low(image),
            model.text_high(text),
            model.image_high(image),
        )
        fused = torch.cat([1.2 * v_low, 1.2 * t_low, (0.7 + 0.3) * v_high, (0.7 + 0.3) * t_high], dim=-1)
        expected = model.classifier(model.refine(model.fuse(fused)))
        torch.testing.assert_close(model({"text": text, "image": image}, {})["prediction"], expected)
    assert not hasattr(model, "deca_t2v") and not hasattr(model, "idca_t2v")


def test_adaptive_weights_are_batch_mean_cosines_of_the_text_and_image_sides_mapped_to_0_1():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[3.0, 0.0], [0.0, -1.0]])  # cos 1 and -1: mean 0
    same, orthogonal = torch.tensor([[1.0, 2.0]]), (torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]]))
    x, y, z = adaptive_weights((same, same), (same, -same), orthogonal)
    assert [x.item(), y.item(), z.item()] == pytest.approx([1.0, 0.0, 0.5], abs=1e-6)  # alike, opposite, at 90°
    x, y, z = adaptive_weights((a, b), (a, a), (b, b))
    assert [x.item(), y.item(), z.item()] == pytest.approx([0.5, 1.0, 1.0], abs=1e-6)
    assert x.dim() == 0  # one value for the whole batch
    text = torch.randn(4, 3, requires_grad=True)
    assert not any(w.requires_grad for w in adaptive_weights((text, text * 2), (text, -text), (text, text)))


def test_the_adaptive_fusion_weights_low_raw_and_attended_features_by_their_similarities():
    model = fusion(weights="adaptive").eval()
    text, image = torch.randn(4, 6), torch.randn(4, 5)
    with torch.no_grad():
        t_low, v_low, t_high, v_high = (
            model.text_low(text),
            model.image_low(image),
            model.text_high(text),
            model.image_high(image),
        )
        t2v_low, v2t_low = model.deca_t2v(v_low, t_low), model.deca_v2t(t_low, v_low)
        t2v_high, v2t_high = model.idca_t2v(v_high, t_high), model.idca_v2t(t_high, v_high)

        def mapped(first, second):
            return (1 + torch.nn.functional.cosine_similarity(first, second, dim=-1).mean()) / 2

        x, y, z = mapped(t_low, v_low), mapped(t_high, v_high), mapped(v2t_high, t2v_high)
        fused = torch.cat([x * t2v_low, x * v2t_low, y * v_high + z * t2v_high, y * t_high + z * v2t_high], dim=-1)
        expected = model.classifier(model.refine(model.fuse(fused)))
        torch.testing.assert_close(model({"text": text, "image": image}, {})["prediction"], expected)
    with pytest.raises(ValueError, match="weights must be"):
        fusion(weights=[1.0, 2.0])


def test_methods_follow_the_paper():
    methods = {m.name: m for m in METHODS}
    assert set(methods) == {
        "deca-idca",
        "deca-idca-equal",
        "deca-idca-adaptive",
        "deca-idca-none",
        "deca-only",
        "idca-only",
        "deca-idca-none-bert-resnet50",
    }
    best = methods["deca-idca"]
    assert best.hparams["train"] == {
        "optimizer": "adam",
        "batch_size": 32,
        "eval_batch_size": 32,
        "lr": 6e-5,
        "lr_decay": 0.4,
        "lr_decay_every": 10,
        "max_epochs": 42,
    }
    assert (
        best.hparams["text"]["freeze"]
        and best.hparams["image"]["freeze"]
        and best.hparams["fusion"]["weights"] == [1.2, 0.7, 0.3]
    )
    assert best.overrides["mvsa-multiple"]["train"] == {"lr": 8e-5, "max_epochs": 20}
    assert {r.dataset: dict(r.metrics) for r in best.reported} == {
        "mvsa-single": {"Acc": 78.27, "F1_weighted": 77.95},
        "mvsa-multiple": {"Acc": 71.18, "F1_weighted": 68.92},
    }
    assert {r.dataset: r.metrics["Acc"] for r in methods["idca-only"].reported} == {
        "mvsa-single": 75.28,
        "mvsa-multiple": 68.42,
    }
    assert (
        methods["deca-idca-equal"].hparams["fusion"]["weights"] == [0.5, 0.5, 0.5]
        and methods["deca-only"].hparams["fusion"]["attention"] == "deca"
    )
    sources = {
        (m.name, r.dataset): (r.source, r.metrics["Acc"], r.metrics["F1_weighted"]) for m in METHODS for r in m.reported
    }
    assert sources[("deca-idca", "mvsa-single")] == ("Ye et al., Table 3", 78.27, 77.95)
    assert sources[("deca-idca", "mvsa-multiple")] == ("Ye et al., Table 4", 71.18, 68.92)
    assert sources[("deca-idca-none", "mvsa-multiple")] == ("Ye et al., Table 5", 63.43, 63.12)
    assert sources[("deca-idca-equal", "mvsa-single")] == ("Ye et al., Table 6", 76.12, 75.27)
    assert sources[("deca-idca-adaptive", "mvsa-single")] == ("Ye et al., Table 6", 75.88, 74.98)
    assert sources[("deca-idca-none-bert-resnet50", "mvsa-single")] == ("Ye et al., Table 7", 62.65, 61.78)
    bert_resnet = methods["deca-idca-none-bert-resnet50"]
    assert bert_resnet.encoders == {"text": "hf-text", "image": "resnet50-image"}
    assert bert_resnet.hparams["fusion"]["attention"] == "none" and bert_resnet.hparams["text"] == {
        "pretrained": "bert-base-uncased",
        "pooling": "cls",
        "freeze": True,
    }
    assert bert_resnet.hparams["image"] == {"pretrained": "microsoft/resnet-50", "freeze": True}
    assert bert_resnet.hparams["train"] == best.hparams["train"]
