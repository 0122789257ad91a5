"""Which input normalisation the packaged EfficientNet-Lite0 weights were trained with, read from their BatchNorm
statistics.

    .venv/bin/python bench/efficientnet_norm.py --images DIR/lab5-dev/data --count 60

Each BatchNorm layer keeps the running mean and variance of its input over the training images. Feed real photos
through the network with a candidate normalisation and compare, layer by layer, the batch's per-channel mean and
variance with the running ones: the normalisation the network was trained with is the one whose statistics match.
Reported per candidate: at the stem (the first BatchNorm, right after the first convolution of the pixels) and
averaged over all 49 BatchNorm layers, the mean shift in running standard deviations (|mean - running mean| /
running std) and the |log| of the variance ratio (0 = equal).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from msabench.pretrained import IMAGENET_MEAN, IMAGENET_STD
from msabench_core.efficientnet import EfficientNetLite0Image

CANDIDATES = {
    "inception style, (x - 127) / 128 (what msabench uses)": ((127 / 255,) * 3, (128 / 255,) * 3),
    "ImageNet mean/std (the package's usage comment)": (IMAGENET_MEAN, IMAGENET_STD),
    "none, pixels in [0, 1]": ((0.0,) * 3, (1.0,) * 3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="a folder of .jpg photos (e.g. lab5-dev/data)")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = EfficientNetLite0Image(None)  # the packaged ImageNet weights, 224 px
    files = sorted(Path(args.images).glob("*.jpg"))[: args.count]
    pixels = encoder.preprocess([path.read_bytes() for path in files]).float() / 255
    layers = [module for module in encoder.model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    found: dict[int, tuple[float, float]] = {}

    def compare(module, inputs, output):
        x = inputs[0]
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        shift = ((mean - module.running_mean).abs() / (module.running_var + module.eps).sqrt()).mean()
        ratio = ((var + 1e-5) / (module.running_var + 1e-5)).log().abs().mean()
        found[id(module)] = (float(shift), float(ratio))

    for layer in layers:
        layer.register_forward_hook(compare)
    print(f"{len(files)} images from {args.images}, {len(layers)} BatchNorm layers\n")
    print(
        "| normalisation | stem: mean shift (sd) | stem: abs log var ratio | all: mean shift | all: abs log var ratio |"
    )
    print("|---|---|---|---|---|")
    for name, (mean, std) in CANDIDATES.items():
        found.clear()
        x = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            encoder.model.extract_features(x)
        shifts, ratios = zip(*(found[id(layer)] for layer in layers), strict=True)
        print(f"| {name} | {shifts[0]:.3f} | {ratios[0]:.3f} | {np.mean(shifts):.3f} | {np.mean(ratios):.3f} |")


if __name__ == "__main__":
    main()
