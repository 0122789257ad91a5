"""The Lab5 fusion heads, and the two-stage recipe the methods encode."""

import torch

from msabench import Task
from msabench_lab5 import METHODS
from msabench_lab5.fusions import ConcatLinear, CrossModalAttention

TASK = Task("classification", "classification", classes=("negative", "neutral", "positive"))


def test_concat_linear_is_one_linear_layer_on_the_concatenation():
    torch.manual_seed(0)
    head = ConcatLinear({"text": 4, "image": 3}, TASK)
    text, image = torch.randn(2, 4), torch.randn(2, 3)
    expected = torch.cat([text, image], -1) @ head.linear.weight.T + head.linear.bias
    torch.testing.assert_close(head({"text": text, "image": image}, {})["prediction"], expected)
    assert ConcatLinear({"text": 4}, TASK)({"text": text}, {})["prediction"].shape == (2, 3)  # the unimodal rows


def test_cross_modal_attention_weights_both_modalities():
    torch.manual_seed(0)
    head = CrossModalAttention({"text": 6, "image": 5}, TASK, hidden=4).eval()
    text, image = torch.randn(3, 6), torch.randn(3, 5)
    with torch.no_grad():
        t, v = torch.relu(head.text[0](text)), torch.relu(head.image[0](image))
        weights = torch.softmax(head.attention(torch.cat([t, v], -1)), dim=-1)
        expected = head.head(torch.cat([weights * t, weights * v], -1))
        torch.testing.assert_close(head({"text": text, "image": image}, {})["prediction"], expected)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert head.attention.in_features == 8 and head.head[0].in_features == 8 and head.head[-1].out_features == 3


def test_stage_two_starts_from_the_same_seeds_stage_one_and_freezes():
    methods = {m.name: m for m in METHODS}
    for name in ("lab5-concat", "lab5-cma"):
        hparams = methods[name].hparams
        assert (
            hparams["text"]["init_from"] == "{results}/{dataset}/lab5-bert/{protocol}/seed-{seed}.pt"
            and hparams["text"]["freeze"]
        )
        assert (
            hparams["image"]["init_from"] == "{results}/{dataset}/lab5-resnet50/{protocol}/seed-{seed}.pt"
            and hparams["image"]["freeze"]
        )
        assert hparams["train"] == {"optimizer": "adamw", "lr": 2e-5, "weight_decay": 1e-5, "batch_size": 32}
    assert methods["lab5-resnet50"].hparams["train"] == {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 32,
        "max_epochs": 5,
    }
    assert (
        methods["lab5-bert"].hparams["train"]["optimizer"] == "adamw"
        and "freeze" not in methods["lab5-bert"].hparams["text"]
    )
    assert {m.name: m.reported[0].metrics["Acc"] for m in METHODS} == {
        "lab5-bert": 74.8,
        "lab5-resnet50": 60.2,
        "lab5-concat": 82.4,
        "lab5-cma": 64.6,
    }
