"""The Lab5 fusion heads, and the two-stage recipe the methods encode."""

import torch

from msabench import Stage, Task
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


def test_stage_two_declares_its_stages_and_freezes_the_encoders_they_start():
    methods = {m.name: m for m in METHODS}
    for name, stage1, report in [
        ("lab5-concat", ("lab5-bert", "lab5-resnet50"), False),
        ("lab5-cma", ("lab5-bert", "lab5-resnet50"), False),
        ("lab5-concat-report", ("lab5-bert-report", "lab5-resnet50-report"), True),
        ("lab5-cma-report", ("lab5-bert-report", "lab5-resnet50-report"), True),
    ]:
        method = methods[name]
        assert method.stages == (Stage(stage1[0], "text"), Stage(stage1[1], "image"))
        assert method.hparams["text"] == {"freeze": True} and method.hparams["image"] == {"freeze": True}
        train = {"optimizer": "adamw", "lr": 2e-5, "weight_decay": 1e-5, "batch_size": 32}
        if report:  # 5 epochs; the explicit L2 term 1e-5 * sum(w^2) is Adam's coupled weight decay 2e-5
            train = {"optimizer": "adam", "lr": 2e-5, "weight_decay": 2e-5, "batch_size": 32, "max_epochs": 5}
        assert method.hparams["train"] == train
    assert methods["lab5-resnet50"].hparams["train"] == {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 32,
        "max_epochs": 5,
    }
    assert methods["lab5-bert"].hparams["text"] == {"pretrained": "bert-base-uncased", "pooling": "cls"}
    assert methods["lab5-bert-report"].hparams["text"]["attention_mask"] is False
    assert methods["lab5-resnet50-report"].hparams["image"] == {"config": {}}  # ResNetConfig() is a ResNet-50
    assert {m.name: m.reported[0].metrics["Acc"] for m in METHODS} == {
        "lab5-bert": 74.8,
        "lab5-resnet50": 60.2,
        "lab5-concat": 82.4,
        "lab5-cma": 64.6,
        "lab5-bert-report": 74.8,
        "lab5-resnet50-report": 60.2,
        "lab5-concat-report": 82.4,
        "lab5-cma-report": 64.6,
    }


def test_the_report_resnet_is_a_random_resnet50():
    from transformers import ResNetConfig

    config = ResNetConfig()
    assert (config.layer_type, list(config.depths), list(config.hidden_sizes)) == (
        "bottleneck",
        [3, 4, 6, 3],
        [256, 512, 1024, 2048],
    )
