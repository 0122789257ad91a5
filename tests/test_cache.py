"""The feature cache and the preparation step: frozen encoders computed once and read back, keys that
change with weights and config, atomic writes, raw inputs preprocessed once, and fit() reading the cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fakes import TINY_FROZEN, ImageTextPlugin, Plugin, tiny_tweets
from msabench import Encoder, InputSpec, Protocol, fit
from msabench.cache import FeatureCache
from msabench.features import Precomputed, compute, prepare
from msabench_core.language import TINY_CONFIG as BERT_TINY
from msabench_core.language import HFText
from msabench_core.vision import TINY_CONFIG as RESNET_TINY
from msabench_core.vision import ResNet50Image
from test_catalog import catalog_with

KEY = {"dataset": "tweets", "split": "train", "encoder": "hf-text", "weights": "abc"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tweets():
    """Image-text data (raw texts and image bytes) that is not synthetic, so the disk cache is used."""
    return tiny_tweets()


class TwoEncoders(nn.Module):
    """The shape of msabench.Model that prepare() works on."""

    def __init__(self, text, image):
        super().__init__()
        self.encoders = nn.ModuleDict({"text": text, "image": image})
        self.inputs = {"text": "raw_text", "image": "image"}


def encoders(seed=0, freeze_text=True, max_length=32):
    torch.manual_seed(seed)
    text = HFText(None, config=BERT_TINY, max_length=max_length, freeze=freeze_text)
    image = ResNet50Image(None, config=RESNET_TINY, image_size=16, freeze=True)
    return TwoEncoders(text, image)


def test_round_trip_and_stale_entries(tmp_path):
    cache = FeatureCache(tmp_path)
    features = torch.randn(3, 5)
    path = cache.save(KEY, ["a", "b", "c"], features)
    assert (
        path.parent == tmp_path / "tweets" / "train"
        and path.name.startswith("hf-text-")
        and (path / "key.json").is_file()
    )
    assert any(p.suffix == ".arrow" for p in path.iterdir())
    assert torch.equal(cache.load(KEY, ["a", "b", "c"]), features)
    assert cache.load(KEY, ["a", "c", "b"]) is None  # other ids: recomputed, never trusted
    assert cache.load({**KEY, "weights": "abd"}, ["a", "b", "c"]) is None
    assert FeatureCache(None).load(KEY, ["a"]) is None and FeatureCache(None).save(KEY, ["a"], features[:1]) is None


def test_a_killed_write_leaves_no_entry(tmp_path, monkeypatch):
    import datasets

    def killed(self, folder, **kwargs):
        (tmp_path / "half").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", killed)
    cache = FeatureCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cache.save(KEY, ["a"], torch.ones(1, 2))
    assert not cache.path(KEY).exists() and not list(cache.path(KEY).parent.glob(".*.tmp"))
    assert cache.load(KEY, ["a"]) is None


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("MSABENCH_CACHE", "off")
    assert not FeatureCache.default().enabled
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "here"))
    assert FeatureCache.default().root == tmp_path / "here"
    monkeypatch.delenv("MSABENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert FeatureCache.default().root == tmp_path / "xdg" / "msabench" / "features"


def test_frozen_encoders_are_computed_once_then_read(tweets, tmp_path):
    cache = FeatureCache(tmp_path)
    model = encoders()
    expected = compute(model.encoders["text"], tweets.splits["valid"], "raw_text", "cpu")
    first = prepare(model, tweets, cache=cache)
    assert isinstance(model.encoders["text"], Precomputed) and model.inputs == {
        "text": "text@hf-text",
        "image": "image@resnet50-image",
    }
    assert first.provenance["encoders"]["text"]["cache"] == {"train": "written", "valid": "written", "test": "written"}
    torch.testing.assert_close(first.splits["valid"].tensors["text@hf-text"], expected)
    assert first.splits["train"].tensors["image@resnet50-image"].shape == (len(tweets.splits["train"]), 16)
    assert "text@hf-text" not in tweets.splits["train"].tensors  # the loaded data are not changed

    again = encoders()
    second = prepare(again, tweets, cache=cache)
    assert second.provenance["encoders"]["image"]["cache"] == {"train": "read", "valid": "read", "test": "read"}
    for name in ("train", "valid", "test"):
        assert torch.equal(second.splits[name].tensors["text@hf-text"], first.splits[name].tensors["text@hf-text"])
    assert again.encoders["text"].weights == first.provenance["encoders"]["text"]["weights"]
    assert sum(1 for _ in tmp_path.rglob("key.json")) == 6


def test_new_weights_or_config_make_new_entries(tweets, tmp_path):
    cache = FeatureCache(tmp_path)
    paths = set()
    for model in (encoders(seed=0), encoders(seed=1), encoders(seed=0, max_length=16)):
        data = prepare(model, tweets, cache=cache)
        assert data.provenance["encoders"]["text"]["cache"]["train"] == "written"
        paths.add(
            model.encoders["text"].weights + str(data.provenance["encoders"]["text"]["fingerprint"]["max_length"])
        )
    assert (
        len(paths) == 3 and sum(1 for _ in tmp_path.rglob("key.json")) == 3 * 3 + 2 * 3
    )  # the image tower changed with the seed only


def test_trained_encoders_get_their_inputs_preprocessed_once(tweets, tmp_path):
    model = encoders(freeze_text=False)
    data = prepare(model, tweets, cache=FeatureCache(tmp_path))
    tokens = data.splits["train"].tensors["raw_text@hf-text"]
    assert model.inputs["text"] == "raw_text@hf-text" and isinstance(model.encoders["text"], HFText)
    assert tokens.shape == (len(tweets.splits["train"]), 2, 32) and tokens.dtype == torch.long
    assert "text" not in data.provenance["encoders"]  # not frozen: nothing cached
    again = prepare(encoders(freeze_text=False), tweets, cache=FeatureCache(tmp_path))
    assert again.splits["train"].tensors["raw_text@hf-text"] is tokens  # the same process reuses it


def test_fit_reads_the_cache_and_gives_the_same_numbers(tweets, tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path))
    catalog = catalog_with(Plugin(), ImageTextPlugin())
    hparams = TINY_FROZEN.hparams_for(tweets)  # frozen tiny hf-text and resnet50-image encoders, a linear head
    hparams["text"]["init_from"] = hparams["image"]["init_from"] = None  # no stage 1: random weights from the config
    runs = [
        fit(TINY_FROZEN, tweets, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=2), hparams=hparams)
        for _ in range(2)
    ]
    assert (
        runs[0].data["encoders"]["text"]["cache"]["train"] == "written"
        and runs[1].data["encoders"]["text"]["cache"]["train"] == "read"
    )
    assert runs[0].history == runs[1].history and runs[0].predictions == runs[1].predictions
    assert runs[0].hparams["text"]["freeze"] is True


def test_an_empty_split_is_stored_and_read_back(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.save(KEY, [], torch.empty(0, 5))
    assert (path / "key.json").is_file()
    loaded = cache.load(KEY, [])
    assert loaded is not None and loaded.shape == (0, 5) and loaded.dtype == torch.float32


def test_prepare_gives_the_same_for_an_empty_split_with_the_cache_on_or_off(tweets, tmp_path):
    from dataclasses import replace

    from msabench import Split

    empty = replace(
        tweets,
        splits={
            **tweets.splits,
            "test": Split("test", [], {"label": torch.zeros(0, dtype=torch.long)}, {"raw_text": [], "image": []}),
        },
    )
    off = prepare(encoders(), empty, cache=FeatureCache(None))
    on = prepare(encoders(), empty, cache=FeatureCache(tmp_path))
    again = prepare(encoders(), empty, cache=FeatureCache(tmp_path))
    assert (
        on.provenance["encoders"]["text"]["cache"]["test"] == "written"
        and again.provenance["encoders"]["text"]["cache"]["test"] == "read"
    )
    for data in (on, again):
        assert (
            data.splits["test"].tensors["text@hf-text"].shape
            == off.splits["test"].tensors["text@hf-text"].shape
            == (0, 16)
        )


def test_a_damaged_entry_is_replaced(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    path = cache.save(KEY, ["a", "b"], torch.ones(2, 3))
    for arrow in path.glob("*.arrow"):
        arrow.write_bytes(b"not arrow")  # e.g. a disk error or a half-copied cache folder
    assert cache.load(KEY, ["a", "b"]) is None and "is unreadable" in caplog.text
    assert cache.save(KEY, ["a", "b"], torch.full((2, 3), 2.0)) == path
    assert torch.equal(
        cache.load(KEY, ["a", "b"]), torch.full((2, 3), 2.0)
    )  # the next run reads it instead of recomputing
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # nothing left beside it


def test_a_good_entry_written_first_by_another_run_is_kept(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.save(KEY, ["a"], torch.ones(1, 2))
    stamp = (path / "key.json").stat().st_mtime_ns
    cache.save(KEY, ["a"], torch.ones(1, 2))
    assert (path / "key.json").stat().st_mtime_ns == stamp and sorted(p.name for p in path.parent.iterdir()) == [
        path.name
    ]


class Averaged(Encoder):
    """A frozen encoder of padded sequences (no parameters): the mean over each sample's `lengths` first steps."""

    name, returns, out_dim = "averaged", "vector", 2

    def fingerprint(self):
        return {"class": "Averaged"}

    def forward(self, x, lengths):
        steps = torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        return (x * steps.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1)


def test_the_key_covers_the_lengths_and_the_libraries_that_decide_the_features(tmp_path):
    from msabench import Data, Split
    from msabench.cache import library_versions
    from msabench.imagetext import SENTIMENT

    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleDict({"audio": Averaged(InputSpec("audio", (4, 2)))})
            self.inputs = {"audio": "audio"}

    audio = torch.arange(24.0).reshape(3, 4, 2)

    def data(lengths):
        split = Split(
            "train",
            ["a", "b", "c"],
            {"audio": audio, "audio_lengths": torch.tensor(lengths), "label": torch.zeros(3, dtype=torch.long)},
        )
        return Data("toy", SENTIMENT, {"train": split}, {})

    cache = FeatureCache(tmp_path)
    first = prepare(One(), data([4, 4, 4]), cache=cache)
    other = prepare(One(), data([1, 2, 4]), cache=cache)  # same padded values, other lengths: other features
    assert other.provenance["encoders"]["audio"]["cache"]["train"] == "written"
    torch.testing.assert_close(
        other.splits["train"].tensors["audio@averaged"],
        torch.stack([audio[0, :1].mean(0), audio[1, :2].mean(0), audio[2].mean(0)]),
    )
    assert not torch.equal(
        first.splits["train"].tensors["audio@averaged"], other.splits["train"].tensors["audio@averaged"]
    )
    assert {"torch", "numpy", "datasets"} <= set(library_versions())


def test_frozen_encoders_fingerprint_their_preprocessing():
    from msabench.pretrained import PREPROCESSING_VERSION

    model = encoders()
    text, image = model.encoders["text"].fingerprint(), model.encoders["image"].fingerprint()
    assert {"transformers", "tokenizers"} <= set(text["library"]) and {"transformers", "Pillow"} <= set(
        image["library"]
    )
    assert text["preprocessing"] == image["preprocessing"] == PREPROCESSING_VERSION and text["padding_side"] == "right"


def test_weights_digests_are_unchanged():
    """Results record these digests and `msabench predict` compares them: the one tensor hasher must keep them."""
    from msabench.cache import input_digest, weights_digest

    module = nn.Linear(3, 2)
    with torch.no_grad():
        module.weight.copy_(torch.arange(6.0).reshape(2, 3))
        module.bias.copy_(torch.tensor([0.5, -1.0]))
    module.register_buffer("steps", torch.tensor([1, 2, 3]))
    assert weights_digest(module) == "a7a45d2028c77e6ddf7b6d2852c1ece6236d3455"
    assert input_digest(["a", "b"], torch.arange(6.0).reshape(2, 3)) == "c50ede5e2eb4bf89d12892c94d50010dffae8dbc"
    assert input_digest(["a", "b"], ["x", b"y"]) == "bb816baa7f3168abc53a82db1dc382146b164c9b"
    assert (
        input_digest(["a", "b"], torch.arange(6.0).reshape(2, 3), torch.tensor([1, 3]))
        != "c50ede5e2eb4bf89d12892c94d50010dffae8dbc"
    )
