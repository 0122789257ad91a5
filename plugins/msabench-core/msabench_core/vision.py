"""`resnet50-image`: ResNet-50's pooled 2048-d features through transformers' ResNetModel (no torchvision)."""

from __future__ import annotations

from msabench.pretrained import (
    BICUBIC,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageProcessing,
    PretrainedEncoder,
    check_positive,
    load_pretrained,
    preprocessor_config,
)

DEFAULT = "microsoft/resnet-50"
TINY_CONFIG = {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "layer_type": "basic"}


class ResNet50Image(PretrainedEncoder):
    """ResNet-50 (microsoft/resnet-50, ImageNet weights) global-average-pooled features; reads image bytes.

    ``pretrained`` is a hub name or a folder written by ``save_pretrained``; ``config`` builds a
    ResNetConfig with random weights instead (tests, smoke runs). Images are resized to 256 px on
    the shortest edge (224 / crop_pct 0.875, bicubic), centre-cropped to 224 and normalised with
    ImageNet's mean and std, as microsoft/resnet-50's image processor does.
    """

    name = "resnet50-image"
    consumes = "image"
    modality = "image"
    tiny = {"config": TINY_CONFIG, "image_size": 16, "init_from": None}

    def __init__(
        self,
        spec,
        pretrained: str | None = DEFAULT,
        *,
        freeze: bool = False,
        init_from: str | None = None,
        config: dict | None = None,
        image_size: int | None = None,
    ):
        super().__init__(spec)
        from transformers import ResNetConfig, ResNetModel

        image_size = check_positive(image_size, encoder=self.name, section="image", key="image_size", optional=True)
        if config is not None:
            self.model = ResNetModel(ResNetConfig(**config))
        else:
            self.model = load_pretrained(ResNetModel.from_pretrained, pretrained, encoder=self.name, section="image")
        self.out_dim = int(self.model.config.hidden_sizes[-1])
        default = ImageProcessing(256, (224, 224), BICUBIC, IMAGENET_MEAN, IMAGENET_STD)
        convnext = {"crop_pct": 0.875, **(preprocessor_config(pretrained) if config is None else {})}
        self.processing = ImageProcessing.from_config(convnext, default=default, image_size=image_size)
        self.settings = {"processing": self.processing.describe()}
        self.finish(freeze=freeze, init_from=init_from, pretrained=None if config is not None else pretrained)

    def preprocess(self, values):
        return self.processing(values)

    def forward(self, x, lengths=None):
        return self.model(pixel_values=self.processing.normalize(x)).pooler_output.flatten(1)
