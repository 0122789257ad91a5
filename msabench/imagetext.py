"""Tweet text + image datasets stored as data/{id}.txt and data/{id}.jpg under a folder: reading and
checking the samples, the splits, and the `ImageTextDataset` base that MVSA and Lab5 build on.

Every dataset keeps, per sample, the tweet text (``raw_text``, a string) and the image file's
bytes (``image``); the encoders turn them into tensors once per split (tokenizer, image
resizing), never per epoch (see `msabench.features`). Texts and images are decoded by
`msabench.decode`; unusual ones are counted and logged. A file that cannot be read at all
(missing, empty, not an image) is an error that lists every such file, unless the dataset is
built with ``skip_unreadable=True`` (``--data-option skip_unreadable=true``): then the sample is
left out, and the count and ids are logged and recorded in the result.

**Splits.** Seeded and stratified 8:1:1 per label (``split_seed``, default 42, independent of
the training seeds; ``held_out`` says how each label's sizes are rounded, see `stratified_split`),
or the ids of a split file (``split_file``, see `msabench.splits`). Which
one was used is recorded in the result. Samples that cannot be read are dropped after
splitting, so one broken file does not reshuffle the others.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from msabench.components import Data, Dataset, Split, Task
from msabench.decode import decode_text, open_image, undefined_bytes
from msabench.errors import DataError
from msabench.integrity import check_file, sha256
from msabench.options import flag, whole
from msabench.splits import SPLITS, read_split_file, stratified_split

log = logging.getLogger("msabench")

SENTIMENT = Task("classification", "classification", classes=("negative", "neutral", "positive"))


@dataclass
class Sample:
    id: str
    text: str
    image: bytes
    label: int | None = None


@dataclass
class Reading:
    """What reading a dataset's files found: decoded samples, and counts of everything unusual."""

    samples: dict[str, Sample] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # id -> why
    encodings: Counter = field(default_factory=Counter)
    replacement_chars: int = 0  # bytes no encoding defines (read as Latin-1), in the texts of `replaced`
    replaced: list[str] = field(default_factory=list)
    empty_texts: list[str] = field(default_factory=list)
    formats: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    truncated: list[str] = field(default_factory=list)
    misnamed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "text": {
                "encodings": dict(sorted(self.encodings.items())),
                "replacement_chars": self.replacement_chars,
                "replaced_ids": self.replaced,
                "empty_ids": self.empty_texts,
            },
            "images": {
                "formats": dict(sorted(self.formats.items())),
                "modes": dict(sorted(self.modes.items())),
                "truncated_ids": self.truncated,
                "misnamed_ids": self.misnamed,
            },
        }


def index_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of an index file (ids and labels: ASCII in practice), a UTF-8 BOM dropped; a line that is
    not UTF-8 is a one-line DataError naming the file, the line and the byte, never a UnicodeDecodeError."""
    lines = []
    for number, raw in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        try:
            lines.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1}); an "
                "index line holds an id and its label(s): fix or remove that line."
            ) from None
    return lines


def safe_id(sample: str, where: str) -> str:
    """A sample id that becomes a file name (data/{id}.txt): refused, naming `where` (the file and line), when it
    could name a file outside the data folder (a path separator, '..', a leading '.', a NUL byte)."""
    if not sample or any(char in sample for char in "/\\\0") or sample.startswith(".") or sample != sample.strip():
        raise DataError(
            f"{where}: id {sample!r} is not a plain file name (it would read outside the dataset's data/ folder); "
            "ids are names such as 1234."
        )
    return sample


def read_samples(folder: Path, ids: Sequence[str], labels: Sequence[int | None], *, where: str) -> Reading:
    """Read and check data/{id}.txt and data/{id}.jpg for every id (each image is decoded once, at reduced scale)."""
    reading = Reading()
    for sample, label in zip(ids, labels, strict=True):
        safe_id(sample, where)
        text_path, image_path = folder / "data" / f"{sample}.txt", folder / "data" / f"{sample}.jpg"
        try:
            text_bytes = text_path.read_bytes()
        except OSError as error:
            reading.unreadable[sample] = f"{text_path}: {error.strerror or error}"
            continue
        try:
            image_bytes = image_path.read_bytes()
            _, notes = open_image(image_bytes, draft=(64, 64))
        except OSError as error:
            reading.unreadable[sample] = f"{image_path}: {error.strerror or error}"
            continue
        except DataError as error:
            reading.unreadable[sample] = f"{image_path}: {error}"
            continue
        text, how = decode_text(text_bytes)
        reading.encodings[how] += 1
        if how == "cp1252+latin-1":
            reading.replaced.append(sample)
            reading.replacement_chars += undefined_bytes(text)
        text = text.strip()
        if not text:
            reading.empty_texts.append(sample)
        reading.formats[notes["format"]] += 1
        reading.modes[notes["mode"]] += 1
        if notes["truncated"]:
            reading.truncated.append(sample)
        if notes["format"] != "JPEG":
            reading.misnamed.append(sample)
        reading.samples[sample] = Sample(sample, text, image_bytes, label)
    _log_reading(reading, where)
    return reading


def _log_reading(reading: Reading, where: str) -> None:
    if reading.replaced:
        log.warning(
            "%s: %d texts were not valid in any known encoding; read as Windows-1252 with %d undefined bytes "
            "read as Latin-1 control characters (ids %s)",
            where,
            len(reading.replaced),
            reading.replacement_chars,
            some(reading.replaced),
        )
    if reading.truncated:
        log.warning(
            "%s: %d truncated images were decoded as far as they go (ids %s)",
            where,
            len(reading.truncated),
            some(reading.truncated),
        )
    if reading.misnamed:
        log.warning(
            "%s: %d .jpg files hold another format (%s); read by content (ids %s)",
            where,
            len(reading.misnamed),
            ", ".join(f for f in reading.formats if f != "JPEG"),
            some(reading.misnamed),
        )
    converted = {mode: n for mode, n in reading.modes.items() if mode != "RGB"}
    if converted:
        log.info("%s: converted to RGB: %s", where, ", ".join(f"{n} {mode}" for mode, n in sorted(converted.items())))
    if reading.empty_texts:
        log.warning("%s: %d empty texts (ids %s)", where, len(reading.empty_texts), some(reading.empty_texts))
    others = {how: n for how, n in reading.encodings.items() if how != "utf-8"}
    if others:
        log.info(
            "%s: texts not in UTF-8 were decoded as %s",
            where,
            ", ".join(f"{how} ({n})" for how, n in sorted(others.items())),
        )


def some(ids: Sequence[str], n: int = 10) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def unreadable_error(unreadable: dict[str, str], where: str) -> DataError:
    lines = [f"  {why}" for why in list(unreadable.values())[:50]]
    more = f"\n  ... and {len(unreadable) - 50} more" if len(unreadable) > 50 else ""
    return DataError(
        f"{where}: {len(unreadable)} samples cannot be read:\n"
        + "\n".join(lines)
        + more
        + "\nFix or restore these files, or skip them with --data-option skip_unreadable=true (they are then counted "
        "in the log and the result)."
    )


def split_tensors(name: str, samples: Sequence[Sample]) -> Split:
    tensors = {}
    if samples and all(sample.label is not None for sample in samples):
        tensors["label"] = torch.tensor([sample.label for sample in samples], dtype=torch.long)
    elif not samples:
        tensors["label"] = torch.zeros(0, dtype=torch.long)
    raw: dict[str, list[Any]] = {
        "raw_text": [sample.text for sample in samples],
        "image": [sample.image for sample in samples],
    }
    return Split(name, [sample.id for sample in samples], tensors, raw)


def samples_digest(samples: Iterator[Sample]) -> str:
    """SHA-256 of the samples as read: id, decoded text, image bytes and label of each (the data's content)."""
    hasher = hashlib.sha256()
    for sample in samples:
        for part in (
            sample.id.encode(),
            sample.text.encode("utf-8", "surrogatepass"),
            sample.image,
            str(sample.label).encode(),
        ):
            hasher.update(len(part).to_bytes(8, "little") + part)
    return hasher.hexdigest()


# -- the datasets -------------------------------------------------------------------------------


class ImageTextDataset(Dataset):
    """Base for tweet text + image datasets stored as data/{id}.txt and data/{id}.jpg under a folder.

    Options (keyword arguments; on the command line ``--data-option KEY=VALUE``): ``split_file``,
    ``split_seed``, ``skip_unreadable``.
    """

    task = SENTIMENT
    inputs = ("raw_text", "image")
    folder: ClassVar[str] = ""  # below the data root; the data root itself also works
    fractions: ClassVar[tuple[float, float, float]] = (0.8, 0.1, 0.1)
    default_split_seed: ClassVar[int] = 42
    held_out: ClassVar[str] = "nearest"  # per-label rounding of the split sizes (see `stratified_split`)
    published_size: ClassVar[int | None] = None  # samples after cleaning, as the literature reports

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        verify: bool = True,
        split_file: str | Path | None = None,
        split_seed: int | None = None,
        skip_unreadable: bool = False,
    ):
        super().__init__(root, verify=verify)
        self.split_file = split_file
        self.split_seed = self.default_split_seed if split_seed is None else whole(split_seed, "split_seed")
        self.skip_unreadable = flag(skip_unreadable, "skip_unreadable")

    @property
    def directory(self) -> Path:
        """The dataset's folder: <root>/<folder> when it exists, else the data root itself."""
        candidate = self.root / self.folder if self.folder else self.root
        first = next(iter(self.files))
        if self.folder and not (candidate / first).is_file() and (self.root / first).is_file():
            return self.root
        return candidate

    @abstractmethod
    def labelled(self) -> tuple[list[str], list[str], dict[str, Any], dict[str, str]]:
        """(ids, labels, cleaning counts, label files -> SHA-256) after the dataset's cleaning rules."""

    def load(self) -> Data:
        folder = self.directory
        ids, labels, cleaning, files = self.labelled()
        if self.split_file is not None:
            assignment = read_split_file(self.split_file)
            known = set(ids)
            if missing := [sample for members in assignment.values() for sample in members if sample not in known]:
                raise DataError(
                    f"{self.name}: {len(missing)} ids of split file {self.split_file} are not among the {len(ids)} "
                    f"labelled samples kept by the cleaning rules (e.g. {some(missing)}). "
                    "Is it a split of this dataset?"
                )
            split_info: dict[str, Any] = {
                "kind": "file",
                "path": str(self.split_file),
                "sha256": _sha256_of(self.split_file),
                "unused": len(known) - sum(map(len, assignment.values())),
            }
        else:
            assignment = stratified_split(ids, labels, self.fractions, self.split_seed, self.held_out)
            split_info = {"kind": "stratified", "seed": self.split_seed, "fractions": list(self.fractions)}
            if self.held_out != "nearest":
                split_info["held_out"] = self.held_out
        label_of = dict(zip(ids, labels, strict=True))
        wanted = [sample for split in SPLITS for sample in assignment[split]]
        reading = read_samples(
            folder, wanted, [self.task.classes.index(label_of[s]) for s in wanted], where=f"{self.name} ({folder})"
        )
        skipped = self._unreadable(reading, f"{self.name} ({folder})")
        splits = {
            split: split_tensors(split, [reading.samples[s] for s in assignment[split] if s in reading.samples])
            for split in SPLITS
        }
        if self.published_size is not None and len(ids) != self.published_size:
            log.warning(
                "%s: %d samples after cleaning; the literature reports %d", self.name, len(ids), self.published_size
            )
        provenance = {
            "source": "file",
            "folder": os.path.relpath(folder, self.root),  # below the data root: no path of this machine
            "files": files,
            "verified": bool(files) and all(self.files.get(name) == digest for name, digest in files.items()),
            "synthetic": False,
            "cleaning": cleaning,
            "split": split_info,
            "sizes": {split: len(part) for split, part in splits.items()},
            "labels": {split: label_counts(part, self.task.classes) for split, part in splits.items()},
            "skipped": skipped,
            "content_sha256": samples_digest(reading.samples[s] for s in wanted if s in reading.samples),
            **reading.summary(),
        }
        return Data(
            name=self.name, task=self.task, splits=splits, provenance=provenance, hparams_from=self.hparams_from
        )

    def _unreadable(self, reading: Reading, where: str) -> dict[str, Any]:
        if reading.unreadable and not self.skip_unreadable:
            raise unreadable_error(reading.unreadable, where)
        if reading.unreadable:
            log.warning(
                "%s: skipped %d unreadable samples (ids %s)",
                where,
                len(reading.unreadable),
                some(list(reading.unreadable)),
            )
        return {
            "count": len(reading.unreadable),
            "ids": list(reading.unreadable),
            "reasons": list(reading.unreadable.values()),
        }

    def _check(self, relative: str) -> dict[str, Any]:
        return check_file(
            self.directory,
            relative,
            self.files.get(relative),
            verify=self.verify,
            dataset=self.name,
            source=self.source,
        )


def label_counts(split: Split, classes: Sequence[str]) -> dict[str, int]:
    """Samples per class in a split ({} for unlabelled splits)."""
    if "label" not in split.tensors:
        return {}
    counts = torch.bincount(split.tensors["label"], minlength=len(classes)).tolist()
    return dict(zip(classes, counts, strict=True))


def _sha256_of(path: str | Path) -> str | None:
    path = Path(path)
    if path.is_file():
        return sha256(path)
    return None
