"""Fake plugins for host tests: small, valid components that tests then break one way at a time, and
image-text fakes (methods over core's encoders, a folder dataset with inputs to predict, folder writers)."""

import io
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from msabench import Encoder, Fusion, Method, Objective, Stage, Task, hookimpl
from msabench.formats import open_image, read_samples, split_tensors, write_atomic
from msabench.testing import TinyImageText
from msabench_core.clip import TINY_CONFIG as CLIP_TINY
from msabench_core.language import TINY_CONFIG as BERT_TINY
from msabench_core.mvsa import MVSASingle
from msabench_core.synthetic import SyntheticMMSA
from msabench_core.text import BertText
from msabench_core.vision import TINY_CONFIG as RESNET_TINY


class TinyData(SyntheticMMSA):
    """Tiny synthetic MMSA-layout data for host tests."""

    name = "tiny-data"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    dims = {"text": 8, "audio": 3, "vision": 4}
    sizes = {"train": 48, "valid": 24, "test": 24}
    lengths = {"text": 8, "audio": 6, "vision": 5}
    files = {"tiny-data/Processed/unaligned.pkl": None}


class MeanEncoder(Encoder):
    """Mean over time, then a linear layer."""

    name = "mean-linear"

    def __init__(self, spec, width: int = 4):
        super().__init__(spec)
        self.linear = nn.Linear(spec.dim, width)
        self.out_dim = width

    def forward(self, x, lengths):
        return self.linear(x.mean(1))


class ConcatFusion(Fusion):
    """Concatenate and predict with a linear layer."""

    name = "fake-concat"
    late = True

    def __init__(self, in_dims, task, dropout: float = 0.0):
        super().__init__(in_dims, task)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(sum(in_dims.values()), task.out_dim)

    def forward(self, features, lengths):
        return {"prediction": self.linear(self.dropout(torch.cat(list(features.values()), -1)))}


class SharedFusion(ConcatFusion):
    """Like fake-concat, and also exposes the fused vector."""

    name = "fake-shared"
    produces = ("prediction", "shared")

    def forward(self, features, lengths):
        fused = torch.cat(list(features.values()), -1)
        return {"prediction": self.linear(fused), "shared": fused}


class NeedsShared(Objective):
    """L1 plus a penalty on the shared vector."""

    name = "needs-shared"
    needs = ("prediction", "shared")

    def forward(self, outputs, batch):
        l1 = (outputs["prediction"].reshape(-1) - batch["label"]).abs().mean()
        return {"total": l1 + 0.01 * outputs["shared"].pow(2).mean(), "l1": l1}


ENCODERS = {"text": "mean-linear", "audio": "mean-linear", "vision": "mean-linear"}
TINY = Method(
    name="tiny",
    paper="A test method",
    encoders=ENCODERS,
    fusion="fake-concat",
    objective="l1",
    hparams={"train": {"batch_size": 16, "lr": 1e-2}},
)


# BERT over `text_bert` token ids (TinyMSA's synthetic vocabulary: a random BERT of bert-text's tiny size).
TINY_BERT = Method(
    name="tiny-bert",
    paper="A test method",
    encoders={"text": "bert-text", "audio": "mean-linear", "vision": "mean-linear"},
    fusion="fake-concat",
    objective="l1",
    hparams={"train": {"batch_size": 16, "lr": 1e-2}, "text": dict(BertText.tiny)},
)


class Plugin:
    """A valid plugin: one of each kind (the core plugin supplies the `l1` objective)."""

    @hookimpl
    def register_datasets(self, register):
        register(TinyData)

    @hookimpl
    def register_encoders(self, register):
        register(MeanEncoder)

    @hookimpl
    def register_fusions(self, register):
        register(ConcatFusion)
        register(SharedFusion)

    @hookimpl
    def register_objectives(self, register):
        register(NeedsShared)

    @hookimpl
    def register_methods(self, register):
        register(TINY)


class TokenIdPlugin:
    """A method over core's bert-text encoder (with `Plugin`, which supplies mean-linear and fake-concat)."""

    @hookimpl
    def register_methods(self, register):
        register(TINY_BERT)


# -- image-text: methods over core's encoders, and data on disk ---------------------------------

TEXT = {"config": BERT_TINY, "max_length": 32, "pooling": "cls"}
IMAGE = {"config": RESNET_TINY, "image_size": 16}


def image_text(name, encoders, hparams):
    return Method(
        name=name,
        paper="A test method",
        encoders=encoders,
        fusion="fake-concat",
        objective="cross-entropy",
        hparams=hparams,
        tasks=("classification",),
    )


TINY_TEXT = image_text(
    "tiny-text", {"text": "hf-text"}, {"train": {"optimizer": "adamw", "lr": 1e-2, "batch_size": 16}, "text": TEXT}
)
TINY_IMAGE = image_text(
    "tiny-image",
    {"image": "resnet50-image"},
    {"train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 16}, "image": IMAGE},
)
# The two-stage recipe: both encoders start from the same seed's stage-1 run and stay frozen.
TINY_FROZEN = image_text(
    "tiny-frozen",
    {"text": "hf-text", "image": "resnet50-image"},
    {
        "train": {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-5, "batch_size": 32},
        "text": {**TEXT, "freeze": True, "init_from": "{results}/{dataset}/tiny-text/{protocol}/seed-{seed}.pt"},
        "image": {**IMAGE, "freeze": True, "init_from": "{results}/{dataset}/tiny-image/{protocol}/seed-{seed}.pt"},
    },
)


# Frozen CLIP towers with random weights (no init_from): their features go through the feature cache.
CLIP = {"config": CLIP_TINY, "freeze": True}
TINY_CLIP = image_text(
    "tiny-clip",
    {"text": "clip-text", "image": "clip-image"},
    {"train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 16}, "text": CLIP, "image": CLIP},
)
# The same two stages declared as stages: `msabench run -m tiny-staged` runs tiny-text and tiny-image first, and
# builds each encoder as its stage did (the stage's section), frozen.
TINY_STAGED = replace(
    image_text(
        "tiny-staged",
        {"text": "hf-text", "image": "resnet50-image"},
        {
            "train": {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-5, "batch_size": 32},
            "text": {"freeze": True},
            "image": {"freeze": True},
        },
    ),
    stages=(Stage("tiny-text", "text"), Stage("tiny-image", "image")),
)


def tiny_tweets():
    """TinyImageText's data marked as real, so that frozen encoders' features go through the disk cache."""
    return replace(TinyImageText().load(), synthetic=False)


class FolderTweets(MVSASingle):
    """MVSA-Single's layout plus unlabelled.txt (one id a line): image-text data on disk with inputs to predict."""

    name = "folder-tweets"
    folder = "folder-tweets"
    published_size = None

    def _unlabelled_ids(self):
        return (self.directory / "unlabelled.txt").read_text().split()

    def unlabelled(self):
        ids, where = self._unlabelled_ids(), f"{self.name} ({self.directory / 'unlabelled.txt'})"
        reading = read_samples(self.directory, ids, [None] * len(ids), where=where)
        self.skipped_unlabelled = self._unreadable(reading, where)
        return split_tensors("predict", [reading.samples[i] for i in ids if i in reading.samples])

    def write_predictions(self, path, ids, labels):
        """id,label for every id of unlabelled.txt, in its order; unpredicted ones: null."""
        predicted = dict(zip(ids, labels, strict=True))
        rows = [f"{i},{predicted.get(i) or 'null'}" for i in self._unlabelled_ids()]
        write_atomic(path, "\n".join(["id,label", *rows]) + "\n")


class ImageTextPlugin:
    """The image-text fakes (with `Plugin`, which supplies the fake-concat fusion)."""

    @hookimpl
    def register_datasets(self, register):
        register(FolderTweets)

    @hookimpl
    def register_methods(self, register):
        for method in (TINY_TEXT, TINY_IMAGE, TINY_FROZEN, TINY_CLIP, TINY_STAGED):
            register(method)


def image_bytes(mode="RGB", size=(20, 14), fmt="JPEG", color=None) -> bytes:
    colors = {"RGB": (200, 30, 60), "L": 90, "CMYK": (0, 200, 200, 0), "RGBA": (10, 200, 10, 0), "P": 3}
    buffer = io.BytesIO()
    Image.new(mode, size, color if color is not None else colors[mode]).save(buffer, format=fmt)
    return buffer.getvalue()


def write_mvsa(root, folder, rows, header) -> Path:
    """An MVSA folder: labelResultAll.txt with `rows` ((id, ["text,image", ...]) per annotator) under `header`,
    and data/{id}.txt ("tweet number {id} #mvsa") and data/{id}.jpg (a plain 20x14 JPEG) for each row."""
    base = Path(root) / folder
    (base / "data").mkdir(parents=True)
    lines = [header]
    for sample, pairs in rows:
        lines.append("\t".join([sample, *pairs]))
        (base / "data" / f"{sample}.txt").write_text(f"tweet number {sample} #mvsa")
        (base / "data" / f"{sample}.jpg").write_bytes(image_bytes())
    (base / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    return base


def write_tweets(folder, n=30, unlabelled=0, seed=0) -> Path:
    """An MVSA-Single-format folder of `n` generated tweets (ids 1..n, one label pair each, data/{id}.txt and 16 px
    data/{id}.jpg JPEGs), and `unlabelled` more listed in unlabelled.txt (for `FolderTweets`); returns the folder."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    classes = TinyImageText.task.classes
    labels, extra = ["ID\ttext,image"], []
    for i, sample in enumerate(TinyImageText().generate(n + unlabelled, seed=seed, prefix="")):
        guid = str(i + 1)
        image, _ = open_image(sample.image)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        (folder / "data" / f"{guid}.txt").write_bytes(sample.text.encode())
        (folder / "data" / f"{guid}.jpg").write_bytes(buffer.getvalue())
        if i < n:
            labels.append(f"{guid}\t{classes[sample.label]},{classes[sample.label]}")
        else:
            extra.append(guid)
    (folder / "labelResultAll.txt").write_text("\n".join(labels) + "\n")
    (folder / "unlabelled.txt").write_text("".join(f"{guid}\n" for guid in extra))
    return folder
