"""Image-text data and encoders: text decoding, MVSA cleaning, the image-text loader with broken files,
splits, image preprocessing against transformers, loading tiny models from save_pretrained folders.
(Lab5's own file formats are tested in plugins/msabench-lab5.)"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import msabench_core
from fakes import image_bytes, write_mvsa, write_tweets
from msabench import CatalogError, DataError, InputSpec
from msabench.decode import decode_text, open_image, undefined_bytes
from msabench.imagetext import samples_digest
from msabench.pretrained import ImageProcessing, char_tokenizer, tokenize
from msabench.splits import read_split_file, stratified_split
from msabench.testing import checks
from msabench_core.clip import TINY_CONFIG as CLIP_TINY
from msabench_core.clip import ClipImage, ClipText
from msabench_core.language import HFText
from msabench_core.mvsa import MVSAMultiple, MVSASingle, clean_pair, majority
from msabench_core.vision import ResNet50Image

RAW = InputSpec("raw_text", ())


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))


# -- text decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text", "how"),
    [
        (b"plain ascii", "plain ascii", "utf-8"),
        ("\ufeffBOM café 😀".encode("utf-8"), "BOM café 😀", "utf-8"),
        (
            "Grief never ends. It hurts… “really” — 海へ来たぞ！".encode("gb18030"),
            "Grief never ends. It hurts… “really” — 海へ来たぞ！",
            "gb18030",
        ),
        ("Café naïve, très bien".encode("latin-1"), "Café naïve, très bien", "cp1252"),
        ("It’s Zürich".encode("cp1252"), "It’s Zürich", "cp1252"),
        ("utf-16 text".encode("utf-16"), "utf-16 text", "utf-16"),
    ],
)
def test_decode_text_picks_the_encoding(data, text, how):
    assert decode_text(data) == (text, how)


def test_decode_text_counts_what_no_encoding_reads():
    text, how = decode_text(b"bad \x81\x8d\x8f\x90\x9d bytes \xff")
    assert how == "cp1252+latin-1" and text == "bad \x81\x8d\x8f\x90\x9d bytes \xff" and undefined_bytes(text) == 5


def test_one_byte_undefined_in_cp1252_keeps_the_accented_letters(tmp_path, caplog):
    data = "Café naïve, très “bien”".encode("cp1252") + b"\x9d"
    assert decode_text(data) == ("Café naïve, très “bien”\x9d", "cp1252+latin-1")
    folder = write_tweets(tmp_path, n=10)
    (folder / "data" / "3.txt").write_bytes(data)
    loaded = MVSASingle(folder).load()
    text = {
        sample: t
        for split in loaded.splits.values()
        for sample, t in zip(split.ids, split.raw["raw_text"], strict=True)
    }
    assert text["3"].startswith("Café naïve, très")
    assert loaded.provenance["text"]["replacement_chars"] == 1 and loaded.provenance["text"]["replaced_ids"] == ["3"]
    assert (
        loaded.provenance["text"]["encodings"] == {"cp1252+latin-1": 1, "utf-8": 9}
        and "1 undefined bytes" in caplog.text
    )


# -- cleaning and splits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "image", "label"),
    [
        ("positive", "positive", "positive"),
        ("neutral", "neutral", "neutral"),
        ("neutral", "positive", "positive"),
        ("negative", "neutral", "negative"),
        ("positive", "negative", None),
        ("negative", "positive", None),
    ],
)
def test_clean_pair(text, image, label):
    assert clean_pair(text, image) == label


@pytest.mark.parametrize(
    ("votes", "label"),
    [
        (["positive", "positive", "negative"], "positive"),
        ([None, "neutral", "neutral"], "neutral"),
        ([None, "neutral", "negative"], None),
        (["neutral", "positive", "negative"], None),
        ([None, None, None], None),
    ],
)
def test_majority(votes, label):
    assert majority(votes) == label


def test_stratified_split_is_seeded_8_1_1_per_label():
    ids = [str(i) for i in range(200)]
    labels = ["positive"] * 100 + ["negative"] * 60 + ["neutral"] * 40
    first, again, other = (
        stratified_split(ids, labels, (0.8, 0.1, 0.1), 42),
        stratified_split(ids, labels, (0.8, 0.1, 0.1), 42),
        stratified_split(ids, labels, (0.8, 0.1, 0.1), 7),
    )
    assert first == again and first != other
    assert [len(first[s]) for s in ("train", "valid", "test")] == [160, 20, 20]
    label_of = dict(zip(ids, labels, strict=True))
    assert sorted(label_of[i] for i in first["valid"]).count("neutral") == 4
    assert set().union(*map(set, first.values())) == set(ids)
    assert first["test"] == sorted(first["test"], key=int)  # each split keeps the file order


def test_mvsa_single_cleaning_and_split(tmp_path):
    rows = [
        ("1", ["positive,positive"]),
        ("2", ["neutral,positive"]),
        ("3", ["negative,neutral"]),
        ("4", ["positive,negative"]),
        ("5", ["neutral,neutral"]),
    ]
    rows += [(str(i), ["positive,neutral"]) for i in range(6, 26)]
    write_mvsa(tmp_path, "MVSA_Single", rows, "ID\ttext,image")
    data = MVSASingle(tmp_path).load()
    labels = {
        sample: data.task.classes[int(label)]
        for split in data.splits.values()
        for sample, label in zip(split.ids, split.tensors["label"], strict=True)
    }
    assert (
        labels["1"] == "positive"
        and labels["2"] == "positive"
        and labels["3"] == "negative"
        and labels["5"] == "neutral"
    )
    assert "4" not in labels and len(labels) == 24
    assert data.provenance["cleaning"] == {"rows": 25, "discarded_conflict": 1, "kept": 24}
    assert data.provenance["split"] == {
        "kind": "stratified",
        "seed": 42,
        "fractions": [0.8, 0.1, 0.1],
        "held_out": "floor",
    }
    assert sum(data.provenance["sizes"].values()) == 24 and data.provenance["sizes"] == {
        "train": 20,
        "valid": 2,
        "test": 2,
    }
    assert data.splits["train"].raw["raw_text"][0].startswith("tweet number")
    assert (
        MVSASingle(tmp_path / "MVSA_Single").load().splits["test"].ids == data.splits["test"].ids
    )  # the folder itself as data root
    assert MVSASingle(tmp_path, split_seed=3).load().splits["test"].ids != data.splits["test"].ids


def test_mvsa_multiple_takes_the_text_and_image_majorities_then_the_single_rule(tmp_path):
    rows = [
        ("1", ["positive,positive", "positive,neutral", "negative,negative"]),  # text pos; image no majority
        ("2", ["positive,negative", "neutral,neutral", "negative,neutral"]),  # text no majority
        ("3", ["neutral,negative", "neutral,negative", "positive,positive"]),  # neutral + negative -> negative
        ("4", ["neutral,neutral", "neutral,positive", "negative,neutral"]),  # neutral, neutral -> neutral
        ("5", ["negative,positive", "positive,positive", "positive,negative"]),  # positive, positive -> positive
        ("6", ["positive,negative", "positive,negative", "neutral,neutral"]),  # positive vs negative: dropped
    ]
    write_mvsa(tmp_path, "MVSA", rows, "ID\ttext,image\ttext,image\ttext,image")
    data = MVSAMultiple(
        tmp_path, split_file=write_split(tmp_path, {"train": ["3", "5"], "valid": ["4"], "test": []})
    ).load()
    assert data.splits["train"].ids == ["3", "5"] and data.splits["train"].tensors["label"].tolist() == [0, 2]
    assert data.splits["valid"].tensors["label"].tolist() == [1] and len(data.splits["test"]) == 0
    assert data.provenance["cleaning"] == {"rows": 6, "discarded_no_majority": 2, "discarded_conflict": 1, "kept": 3}
    assert data.provenance["split"]["kind"] == "file" and data.provenance["split"]["unused"] == 0


# Annotation patterns (three annotators' text,image labels) with what the literature's rule makes of them and what
# cleaning each annotator first, then voting, would: (pairs, literature, per-annotator).
P, U, N = "positive", "neutral", "negative"
PATTERNS = {
    "all-positive": ((f"{P},{P}",) * 3, P, P),
    "all-neutral": ((f"{U},{U}",) * 3, U, U),
    "all-negative": ((f"{N},{N}",) * 3, N, N),
    "image-undecided-positive": ((f"{P},{P}", f"{P},{U}", f"{N},{N}"), None, P),
    "neutral-majorities-from-positive": ((f"{U},{P}", f"{P},{U}", f"{U},{U}"), U, P),
    "neutral-majorities-from-negative": ((f"{U},{N}", f"{N},{U}", f"{U},{U}"), U, N),
    "neutral-majorities-no-vote": ((f"{U},{U}", f"{U},{P}", f"{N},{U}"), U, None),
    "positive-majorities-no-vote": ((f"{N},{P}", f"{P},{P}", f"{P},{N}"), P, None),
    "negative-majorities-no-vote": ((f"{P},{N}", f"{N},{N}", f"{N},{P}"), N, None),
    "image-undecided-negative": ((f"{N},{N}", f"{N},{U}", f"{P},{P}"), None, N),
    "undecided": ((f"{P},{N}", f"{N},{P}", f"{U},{U}"), None, None),
}
# How many tweets of each pattern: MVSA-Multiple's 19,600, with its published 17,024 = 11,318 / 4,408 / 1,298 after
# the literature's rule, and 17,510 = 11,903 / 4,107 / 1,500 after per-annotator cleaning and a vote.
MULTIPLE = {
    "all-positive": 11300,
    "all-neutral": 4107,
    "all-negative": 1250,
    "image-undecided-positive": 403,
    "neutral-majorities-from-positive": 200,
    "neutral-majorities-from-negative": 50,
    "neutral-majorities-no-vote": 51,
    "positive-majorities-no-vote": 18,
    "negative-majorities-no-vote": 48,
    "image-undecided-negative": 200,
    "undecided": 1973,
}


def write_labels(folder, patterns, counts, header):
    """labelResultAll.txt only (the label counts need no data files), rows shuffled with a fixed seed."""
    rows = [pairs for name, n in counts.items() for pairs in [patterns[name]] * n]
    order = np.random.default_rng(0).permutation(len(rows))
    folder.mkdir(parents=True)
    lines = [header] + [f"{i + 1}\t" + "\t".join(rows[k]) for i, k in enumerate(order)]
    (folder / "labelResultAll.txt").write_text("\n".join(lines) + "\n")


def test_mvsa_multiple_gives_the_published_counts_and_split_sizes(tmp_path):
    write_labels(
        tmp_path / "MVSA", {k: v[0] for k, v in PATTERNS.items()}, MULTIPLE, "ID\ttext,image\ttext,image\ttext,image"
    )
    dataset = MVSAMultiple(tmp_path)
    ids, labels, cleaning, _ = dataset.labelled()
    assert len(ids) == 17024 and cleaning["rows"] == 19600 and cleaning["kept"] == 17024
    assert {c: labels.count(c) for c in (P, U, N)} == {P: 11318, U: 4408, N: 1298}
    expected = {c: sum(n for name, n in MULTIPLE.items() if PATTERNS[name][1] == c) for c in (P, U, N)}
    assert {c: labels.count(c) for c in (P, U, N)} == expected
    for pairs, _, old in PATTERNS.values():  # what cleaning each annotator first, then voting, makes of them
        assert majority([clean_pair(*pair.split(",")) for pair in pairs]) == old
    per_annotator = {c: sum(n for name, n in MULTIPLE.items() if PATTERNS[name][2] == c) for c in (P, U, N)}
    assert per_annotator == {P: 11903, U: 4107, N: 1500}  # the rule the loader no longer uses keeps 17,510
    split = stratified_split(ids, labels, dataset.fractions, dataset.split_seed, dataset.held_out)
    assert [len(split[s]) for s in ("train", "valid", "test")] == [13624, 1700, 1700]
    label_of = dict(zip(ids, labels, strict=True))
    assert {c: [label_of[i] for i in split["test"]].count(c) for c in (P, U, N)} == {P: 1131, U: 440, N: 129}


def test_mvsa_single_gives_the_published_counts_and_split_sizes(tmp_path):
    patterns = {"pp": (f"{P},{P}",), "up": (f"{U},{P}",), "uu": (f"{U},{U}",), "nn": (f"{N},{N}",)}
    patterns |= {"nu": (f"{N},{U}",), "pn": (f"{P},{N}",)}
    counts = {"pp": 2000, "up": 683, "uu": 470, "nn": 1000, "nu": 358, "pn": 358}  # 4,869 tweets
    write_labels(tmp_path / "MVSA_Single", patterns, counts, "ID\ttext,image")
    dataset = MVSASingle(tmp_path)
    ids, labels, cleaning, _ = dataset.labelled()
    assert cleaning == {"rows": 4869, "discarded_conflict": 358, "kept": 4511}
    assert {c: labels.count(c) for c in (P, U, N)} == {P: 2683, U: 470, N: 1358}
    split = stratified_split(ids, labels, dataset.fractions, dataset.split_seed, dataset.held_out)
    assert [len(split[s]) for s in ("train", "valid", "test")] == [3611, 450, 450]
    label_of = dict(zip(ids, labels, strict=True))
    assert {c: [label_of[i] for i in split["valid"]].count(c) for c in (P, U, N)} == {P: 268, U: 47, N: 135}
    nearest = stratified_split(ids, labels, dataset.fractions, dataset.split_seed)
    assert [len(nearest[s]) for s in ("train", "valid", "test")] == [3608, 451, 452]  # per-class rounding


def test_mvsa_label_file_errors_name_the_line(tmp_path):
    base = write_mvsa(tmp_path, "MVSA_Single", [("1", ["positive,positive"])], "ID\ttext,image")
    (base / "labelResultAll.txt").write_text("ID\ttext,image\n1\tpositive,happy\n")
    with pytest.raises(DataError, match=r"labelResultAll.txt:2: expected an id and 1 'text,image'"):
        MVSASingle(tmp_path).load()
    with pytest.raises(DataError, match="labelResultAll.txt.*does not exist"):
        MVSASingle(tmp_path / "elsewhere").load()


def write_split(folder, parts):
    path = folder / "split.json"
    path.write_text(json.dumps(parts))
    return path


def test_split_files_json_or_folder(tmp_path):
    (tmp_path / "splits").mkdir()
    for name, ids in (("train", "1\n2\n"), ("dev", "id\n3\n"), ("test", "4\n")):
        (tmp_path / "splits" / f"{name}.txt").write_text(ids)
    assert read_split_file(tmp_path / "splits") == {"train": ["1", "2"], "valid": ["3"], "test": ["4"]}
    assert read_split_file(write_split(tmp_path, {"train": [1], "val": [2], "test": [3]})) == {
        "train": ["1"],
        "valid": ["2"],
        "test": ["3"],
    }
    with pytest.raises(DataError, match="id '1' is in train and test"):
        read_split_file(write_split(tmp_path, {"train": ["1"], "valid": [], "test": ["1"]}))
    folder = write_tweets(tmp_path / "tweets", n=12)
    with pytest.raises(DataError, match="2 ids of split file .* are not among the 12 labelled samples"):
        MVSASingle(folder, split_file=write_split(tmp_path, {"train": ["1", "99"], "valid": ["98"], "test": []})).load()


def test_bad_data_options_are_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"--data-option split_seed=seven: expected a whole number"):
        MVSASingle(tmp_path, split_seed="seven")
    with pytest.raises(DataError, match=r"--data-option skip_unreadable=maybe: expected true or false"):
        MVSASingle(tmp_path, skip_unreadable="maybe")
    assert MVSASingle(tmp_path, split_seed="7").split_seed == 7


def test_the_content_digest_covers_every_sample(tmp_path):
    folder = write_tweets(tmp_path, n=10)
    first = MVSASingle(folder).load().provenance["content_sha256"]
    (folder / "data" / "4.txt").write_text("another text")
    assert MVSASingle(folder).load().provenance["content_sha256"] != first
    assert samples_digest(iter([])) == samples_digest(iter([]))


# -- messy files --------------------------------------------------------------------------------


def test_image_text_loader_reads_messy_files_and_counts_them(tmp_path, caplog):
    folder = write_tweets(tmp_path, n=20)
    data_dir = folder / "data"
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG")
    (data_dir / "1.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])  # truncated in the scan data
    (data_dir / "2.jpg").write_bytes(image_bytes("CMYK"))
    (data_dir / "3.jpg").write_bytes(image_bytes("L"))
    (data_dir / "4.jpg").write_bytes(image_bytes("RGBA", fmt="PNG"))  # PNG bytes named .jpg, transparent
    (data_dir / "5.txt").write_bytes("Café naïve à la plage".encode("latin-1"))
    (data_dir / "6.txt").write_bytes("Grief never ends… “really”".encode("gb18030"))
    data = MVSASingle(folder).load()
    text = {
        sample: t for split in data.splits.values() for sample, t in zip(split.ids, split.raw["raw_text"], strict=True)
    }
    assert text["5"] == "Café naïve à la plage" and text["6"] == "Grief never ends… “really”"
    provenance = data.provenance
    assert provenance["images"]["truncated_ids"] == ["1"] and provenance["images"]["misnamed_ids"] == ["4"]
    assert provenance["images"]["modes"] == {"CMYK": 1, "L": 1, "RGB": 17, "RGBA": 1}
    assert provenance["text"]["encodings"] == {"cp1252": 1, "gb18030": 1, "utf-8": 18}
    assert "1 truncated images" in caplog.text and "1 .jpg files hold another format (PNG)" in caplog.text
    image, notes = open_image((data_dir / "4.jpg").read_bytes())
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255) and notes["format"] == "PNG"
    assert open_image((data_dir / "2.jpg").read_bytes())[0].mode == "RGB"


def test_unreadable_files_are_an_error_or_skipped_and_counted(tmp_path, caplog):
    folder = write_tweets(tmp_path, n=20)
    (folder / "data" / "7.jpg").write_bytes(b"this is not an image")
    (folder / "data" / "8.jpg").write_bytes(b"")
    (folder / "data" / "9.txt").unlink()
    with pytest.raises(DataError) as error:
        MVSASingle(folder).load()
    message = str(error.value)
    assert (
        "3 samples cannot be read" in message
        and "7.jpg" in message
        and "8.jpg: empty file" in message
        and "9.txt" in message
    )
    assert "skip_unreadable=true" in message
    data = MVSASingle(folder, skip_unreadable="true").load()
    assert sum(len(split) for split in data.splits.values()) == 17
    assert data.provenance["skipped"]["count"] == 3 and sorted(data.provenance["skipped"]["ids"]) == ["7", "8", "9"]
    assert "skipped 3 unreadable samples" in caplog.text


# -- image preprocessing and encoders -----------------------------------------------------------


def test_image_processing_matches_transformers_processors():
    transformers = pytest.importorskip("transformers")
    clip_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    convnext_cls = getattr(transformers, "ConvNextImageProcessorPil", None) or transformers.ConvNextImageProcessor
    rng = np.random.default_rng(0)
    for width, height in ((45, 30), (30, 52)):
        picture = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        for processor, default in (
            (
                clip_cls(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24}),
                ImageProcessing(224, (224, 224)),
            ),
            (
                convnext_cls(
                    size={"shortest_edge": 21},
                    crop_pct=0.875,
                    image_mean=[0.485, 0.456, 0.406],
                    image_std=[0.229, 0.224, 0.225],
                ),
                ImageProcessing(256, (224, 224)),
            ),
        ):
            expected = processor(images=[picture], return_tensors="pt")["pixel_values"]
            ours = ImageProcessing.from_config(processor.to_dict(), default=default)
            pixels = ours([buffer.getvalue()])
            assert pixels.dtype == torch.uint8
            torch.testing.assert_close(ours.normalize(pixels), expected, rtol=0, atol=1e-5)


def save_tiny_clip(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = dict(CLIP_TINY)
    model = CLIPModel(
        CLIPConfig(
            text_config=config["text_config"],
            vision_config=config["vision_config"],
            projection_dim=config["projection_dim"],
        )
    )
    model.save_pretrained(folder)
    char_tokenizer(24).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(folder)
    return model


def test_clip_encoders_load_a_save_pretrained_folder(tmp_path):
    model = save_tiny_clip(tmp_path / "clip")
    image = ClipImage(InputSpec("image", ()), pretrained=str(tmp_path / "clip"), freeze=True)
    text = ClipText(RAW, pretrained=str(tmp_path / "clip"), normalize=True)
    assert image.processing.crop == (16, 16) and image.out_dim == 8 and text.max_length == 24
    pixels = image.preprocess([image_bytes(size=(30, 20)), image_bytes("L", size=(16, 40))])
    assert pixels.shape == (2, 3, 16, 16) and pixels.dtype == torch.uint8
    with torch.no_grad():
        expected = model.visual_projection(
            model.vision_model(pixel_values=image.processing.normalize(pixels)).pooler_output
        )
        torch.testing.assert_close(image(pixels), expected)
        tokens = text.preprocess(["a good day", "bad"])
        assert tokens.shape == (2, 2, 24) and tokens[1, 1].sum() == 5  # [CLS] b a d [SEP]
        out = text(tokens)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    assert (
        not any(p.requires_grad for p in image.parameters()) and not image.train().training
    )  # frozen stays in eval mode


def test_resnet_and_hf_text_load_save_pretrained_folders(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizer, ConvNextImageProcessor, ResNetConfig, ResNetModel

    torch.manual_seed(0)
    ResNetModel(
        ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    ).save_pretrained(tmp_path / "resnet")
    ConvNextImageProcessor(size={"shortest_edge": 28}, crop_pct=0.875).save_pretrained(tmp_path / "resnet")
    resnet = ResNet50Image(InputSpec("image", ()), pretrained=str(tmp_path / "resnet"))
    assert resnet.out_dim == 12 and resnet.processing.resize == 32 and resnet.processing.crop == (28, 28)
    assert resnet(resnet.preprocess([image_bytes(size=(40, 30))])).shape == (1, 12)

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "day", "a"]
    BertTokenizer(vocab={word: i for i, word in enumerate(words)}).save_pretrained(
        tmp_path / "bert"
    )  # vocab_file= is ignored in transformers 5
    bert = BertModel(
        BertConfig(
            vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    bert.save_pretrained(tmp_path / "bert")
    encoder = HFText(RAW, pretrained=str(tmp_path / "bert"), pooling="mean", max_length=8)
    tokens = encoder.preprocess(["a good day", "bad"])
    assert tokens[0, 0, :5].tolist() == [2, 8, 5, 7, 3] and tokens.shape == (2, 2, 8)
    with torch.no_grad():
        hidden = bert.eval()(input_ids=tokens[1:, 0, :3]).last_hidden_state
        torch.testing.assert_close(encoder.eval()(tokens)[1], hidden[0].mean(0), atol=1e-5, rtol=1e-5)
    assert (
        HFText(RAW, pretrained=str(tmp_path / "bert"), pooling="cls").fingerprint()["tokenizer"]
        == encoder.fingerprint()["tokenizer"]
    )


def test_a_left_padding_tokenizer_is_used_with_right_padding(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "day", "a"]
    BertTokenizer(vocab={word: i for i, word in enumerate(words)}, padding_side="left").save_pretrained(
        tmp_path / "bert"
    )
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    bert.save_pretrained(tmp_path / "bert")
    left = AutoTokenizer.from_pretrained(tmp_path / "bert")
    assert left.padding_side == "left"
    tokens = tokenize(left, ["a good day", "bad"], 8)
    assert tokens[1, 0].tolist() == [2, 6, 3, 0, 0, 0, 0, 0] and tokens[1, 1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert left.padding_side == "left"  # a copy pads on the right; the caller's tokenizer is unchanged

    encoder = HFText(RAW, pretrained=str(tmp_path / "bert"), pooling="cls", max_length=8).eval()
    assert encoder.tokenizer.padding_side == "right" and encoder.fingerprint()["padding_side"] == "right"
    with torch.no_grad():
        expected = bert.eval()(input_ids=torch.tensor([[2, 6, 3]])).last_hidden_state[0, 0]
        torch.testing.assert_close(
            encoder(encoder.preprocess(["a good day", "bad"]))[1], expected, atol=1e-5, rtol=1e-5
        )


def test_bad_encoder_hyper_parameters_are_catalog_errors():
    from msabench_core.language import TINY_CONFIG as BERT_TINY
    from msabench_core.vision import TINY_CONFIG as RESNET_TINY

    with pytest.raises(
        CatalogError, match=r"pooling 'max' is not one of cls, mean, pooler; set --set text.pooling=cls"
    ):
        HFText(RAW, config=BERT_TINY, pooling="max")
    with pytest.raises(
        CatalogError, match=r"max_length must be a positive whole number; got 0. Set --set text.max_length=N"
    ):
        HFText(RAW, config=BERT_TINY, max_length=0)
    with pytest.raises(CatalogError, match=r"unknown backend 'jax'; set --set image.backend=transformers"):
        ClipImage(InputSpec("image", ()), config=CLIP_TINY, backend="jax")
    with pytest.raises(CatalogError, match=r"max_length must be a positive whole number; got 2.5"):
        ClipText(RAW, config=CLIP_TINY, max_length=2.5)
    with pytest.raises(
        CatalogError, match=r"image_size must be a positive whole number; got -16. Set --set image.image_size=N"
    ):
        ResNet50Image(InputSpec("image", ()), config=RESNET_TINY, image_size=-16)


def test_a_tokenizer_that_ignores_its_vocabulary_is_refused(tmp_path):
    from tokenizers import Regex, Tokenizer, models, normalizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "day", "sunny", "rain", "happy"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Replace(Regex("[a-z]"), "x")  # every word becomes "xxxx": all [UNK]
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(
        tmp_path / "broken"
    )
    BertModel(
        BertConfig(
            vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
    ).save_pretrained(tmp_path / "broken")
    with pytest.raises(DataError, match=r"turns every word of its own vocabulary into '\[UNK\]'"):
        HFText(RAW, pretrained=str(tmp_path / "broken"))


def test_missing_weights_fail_fast_with_a_way_out(tmp_path):
    with pytest.raises(
        DataError,
        match=r"cannot load the tokenizer 'no-such-org/no-such-model' \(HF_HUB_OFFLINE is set"
        r".*--set text.pretrained=DIR",
    ):
        HFText(RAW, pretrained="no-such-org/no-such-model")
    with pytest.raises(DataError, match=r"is not a folder"):
        ResNet50Image(InputSpec("image", ()), pretrained=str(tmp_path / "weights.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"cannot load the model .*in the folder.*--set image.pretrained=DIR"):
        ClipImage(InputSpec("image", ()), pretrained=str(tmp_path / "empty"))


def test_open_clip_backend_is_optional_and_lazy(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "open_clip", None)  # as when it is not installed
    with pytest.raises(DataError, match=r"backend 'open_clip' needs the open_clip package.*msabench\[open-clip\]"):
        ClipImage(InputSpec("image", ()), backend="open_clip")

    class Visual(torch.nn.Module):
        image_size, output_dim = 16, 5

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 5)

        def forward(self, x):
            return self.linear(x.mean((2, 3)))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = Visual()
            self.text_projection = torch.nn.Parameter(torch.randn(4, 5))

        def encode_text(self, ids):
            return ids.float()[:, :4] @ self.text_projection

    fake = types.SimpleNamespace(
        create_model_and_transforms=lambda name, pretrained=None: (Model(), None, None),
        get_tokenizer=lambda name: lambda texts: torch.tensor([[1, len(t), 2, 0, 0, 0] for t in texts]),
        __version__="0.0-test",
    )
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    image = ClipImage(InputSpec("image", ()), backend="open_clip", pretrained="openai")
    assert image(image.preprocess([image_bytes()])).shape == (1, 5) and image.processing.crop == (16, 16)
    text = ClipText(RAW, backend="open_clip", pretrained="openai")
    tokens = text.preprocess(["hey", "hello"])
    assert tokens[:, 1].tolist() == [[1, 1, 1, 0, 0, 0]] * 2 and text(tokens).shape == (2, 5)
    assert text.fingerprint()["backend"] == "open_clip"


@pytest.mark.parametrize(
    "name",
    [
        "check_hookimpls_match_specs",
        "check_catalog_accepts_plugin",
        "check_dataset_schema",
        "check_encoder_output_shape",
    ],
)
def test_core_plugin_conformance_of_the_image_text_parts(name):
    """The kit's checks that cover datasets and encoders (core's objectives are checked with the methods that
    use them)."""
    dict(checks(msabench_core, installed=False))[name]()
