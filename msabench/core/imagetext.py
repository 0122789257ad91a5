"""Image-text sentiment datasets: MVSA-Single, MVSA-Multiple, the Lab5 course format, and a
synthetic one. Three classes: negative / neutral / positive.

Every dataset keeps, per sample, the tweet text (``raw_text``, a string) and the image file's
bytes (``image``); the encoders turn them into tensors once per split (tokenizer, image
resizing), never per epoch (see `msabench.features`).

**Reading messy files.** Texts are decoded by `decode_text`: UTF-8 (a BOM is dropped); else
GB18030 when the result does not look like a Windows-1252 text read as Chinese (Lab5's files are
GBK-encoded: in lab5-dev, 378 of 1,600 texts); else Windows-1252 (what "ISO-8859-1" text
usually is), where the five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D)
are read as Latin-1 does (control characters U+0081...) and counted as replacements, so that one
stray byte does not cost a text its accented letters. Images go through
Pillow, which reads the format from the bytes, not the name (PNG bytes named .jpg are counted);
CMYK, grayscale, palette and alpha images are converted to RGB (transparency onto white) and
counted; a truncated file is decoded as far as it goes, counted and logged. A file that cannot
be read at all (missing, empty, not an image) is an error that lists every such file, unless
the dataset is built with ``skip_unreadable=True`` (``--data-option skip_unreadable=true``):
then the sample is left out, and the count and ids are logged and recorded in the result.

**Splits.** Seeded and stratified 8:1:1 per label (``split_seed``, default 42, independent of
the training seeds), or the ids of a split file (``split_file``: JSON ``{"train": [...],
"valid": [...], "test": [...]}``, or a folder with ``train.txt``, ``valid.txt`` (or ``val.txt``
/ ``dev.txt``) and ``test.txt``, one id per line). Which one was used is recorded in the result.
Samples that cannot be read are dropped after splitting, so one broken file does not reshuffle
the others.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import logging
import re
import threading
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from msabench import Data, DataError, Dataset, Split, Task, check_file, sha256

log = logging.getLogger("msabench")

CLASSES = ("negative", "neutral", "positive")
TASK = Task("classification", "classification", classes=CLASSES)
SPLITS = ("train", "valid", "test")

# -- text ---------------------------------------------------------------------------------------

_CJK = r"\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_BESIDE_LATIN = re.compile(f"(?<=[A-Za-z])[{_CJK}]|[{_CJK}](?=[A-Za-z])")


CP1252_UNDEFINED = "\x81\x8d\x8f\x90\x9d"  # bytes Windows-1252 leaves undefined; read as Latin-1 (the same code points)


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, how): how is "utf-8", "utf-16", "gb18030", "cp1252" or "cp1252+latin-1".

    GB18030 decodes most Windows-1252 texts too, as Chinese characters glued to Latin letters
    ("naïve" -> "na飗e"); such a reading is refused when most of its CJK characters touch a Latin
    letter, which Chinese or Japanese text rarely does. Windows-1252 reads every byte but five
    (`CP1252_UNDEFINED`); those are read as Latin-1 and the text is marked "cp1252+latin-1"
    (`undefined_bytes` counts them).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-16"), "utf-16"
    with contextlib.suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig"), "utf-8"
    with contextlib.suppress(UnicodeDecodeError):
        text = data.decode("gb18030")
        cjk = len(_CJK_CHAR.findall(text))
        if 2 * len(_CJK_BESIDE_LATIN.findall(text)) <= cjk:
            return text, "gb18030"
    with contextlib.suppress(UnicodeDecodeError):
        return data.decode("cp1252"), "cp1252"
    return data.decode("cp1252", errors="msabench-latin-1"), "cp1252+latin-1"


def undefined_bytes(text: str) -> int:
    """How many characters of a "cp1252+latin-1" text came from bytes that Windows-1252 leaves undefined."""
    return sum(text.count(char) for char in CP1252_UNDEFINED)


def _latin1(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("msabench-latin-1", _latin1)


# -- images -------------------------------------------------------------------------------------

_TRUNCATED = threading.Lock()


def open_image(data: bytes, *, draft: tuple[int, int] | None = None) -> tuple[Any, dict[str, Any]]:
    """(RGB PIL image, notes) from an image file's bytes; raises DataError if it cannot be decoded at all.

    notes: ``format`` (what the bytes are), ``mode`` (before conversion), ``truncated`` (decoded
    only as far as the file goes). `draft` lets JPEG decode at a reduced scale (for checking files).
    """
    from PIL import Image, ImageFile

    if not data:
        raise DataError("empty file")
    try:
        image = Image.open(io.BytesIO(data))
        if draft is not None:
            image.draft("RGB", draft)
        notes = {"format": image.format, "mode": image.mode, "truncated": False}
        try:
            image.load()
        except OSError as error:
            if "truncated" not in str(error).lower():
                raise
            with _TRUNCATED:  # Pillow's switch is global: hold it only for this one decode
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    image = Image.open(io.BytesIO(data))
                    if draft is not None:
                        image.draft("RGB", draft)
                    image.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = False
            notes["truncated"] = True
        return to_rgb(image), notes
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise DataError(f"{type(error).__name__}: {error}") from None


def to_rgb(image: Any) -> Any:
    """An RGB copy of a PIL image; transparent pixels become white."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array / top * 255).clip(0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


# -- labels and splits --------------------------------------------------------------------------


def clean_pair(text: str, image: str) -> str | None:
    """One annotator's (text, image) labels -> one label: equal -> it; neutral + polar -> the polar one;
    positive vs negative -> None (discarded)."""
    if text == image:
        return text
    if "neutral" in (text, image):
        return image if text == "neutral" else text
    return None


def majority(votes: Sequence[str | None]) -> str | None:
    """The label at least two of the (cleaned) votes agree on, else None (discarded)."""
    counts = Counter(vote for vote in votes if vote is not None)
    if not counts:
        return None
    label, count = counts.most_common(1)[0]
    return label if count >= 2 else None


def stratified_split(
    ids: Sequence[str], labels: Sequence[str], fractions: Sequence[float], seed: int
) -> dict[str, list[str]]:
    """Ids per split, drawn per label with a seeded permutation; each split keeps the input order."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1; got {fractions}")
    rng = np.random.default_rng(seed)
    position = {sample: i for i, sample in enumerate(ids)}
    parts: dict[str, list[str]] = {split: [] for split in SPLITS}
    for label in sorted(set(labels)):
        members = [sample for sample, own in zip(ids, labels) if own == label]
        order = [members[i] for i in rng.permutation(len(members))]
        n_train = int(round(len(members) * fractions[0]))
        n_valid = int(round(len(members) * fractions[1]))
        parts["train"] += order[:n_train]
        parts["valid"] += order[n_train : n_train + n_valid]
        parts["test"] += order[n_train + n_valid :]
    return {split: sorted(members, key=position.__getitem__) for split, members in parts.items()}


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """{"train"|"valid"|"test": ids} from a JSON file or a folder of train/valid/test .txt files."""
    path = Path(path).expanduser()
    aliases = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}
    if path.is_dir():
        parts = {}
        for split, names in aliases.items():
            found = next((path / f"{name}.txt" for name in names if (path / f"{name}.txt").is_file()), None)
            if found is None:
                raise DataError(
                    f"split folder {path} has no {' or '.join(f'{n}.txt' for n in names)} (one id per line)."
                )
            lines = [
                line.split("\t")[0].split(",")[0].strip() for line in found.read_text(encoding="utf-8-sig").splitlines()
            ]
            parts[split] = [line for line in lines if line and line.lower() not in ("id", "guid")]
    elif path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as error:
            raise DataError(f"split file {path} is not JSON: {error}") from None
        parts = {}
        for split, names in aliases.items():
            key = next((name for name in names if isinstance(raw, dict) and name in raw), None)
            if key is None or not isinstance(raw[key], list):
                raise DataError(f"split file {path} needs a list of ids under {' or '.join(repr(n) for n in names)}.")
            parts[split] = [str(sample) for sample in raw[key]]
    else:
        raise DataError(f"split file {path} does not exist.")
    seen: dict[str, str] = {}
    for split, members in parts.items():
        for sample in members:
            if sample in seen:
                raise DataError(
                    f"split file {path}: id {sample!r} is in {seen[sample]} and {split}"
                    + (" twice" if seen[sample] == split else "")
                    + "."
                )
            seen[sample] = split
    return parts


# -- assembling Data ----------------------------------------------------------------------------


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


def read_samples(folder: Path, ids: Sequence[str], labels: Sequence[int | None], *, where: str) -> Reading:
    """Read and check data/{id}.txt and data/{id}.jpg for every id (each image is decoded once, at reduced scale)."""
    reading = Reading()
    for sample, label in zip(ids, labels):
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
            "%s: %d texts were not valid in any known encoding; read as Windows-1252 with %d undefined bytes read as Latin-1 control characters (ids %s)",
            where,
            len(reading.replaced),
            reading.replacement_chars,
            _some(reading.replaced),
        )
    if reading.truncated:
        log.warning(
            "%s: %d truncated images were decoded as far as they go (ids %s)",
            where,
            len(reading.truncated),
            _some(reading.truncated),
        )
    if reading.misnamed:
        log.warning(
            "%s: %d .jpg files hold another format (%s); read by content (ids %s)",
            where,
            len(reading.misnamed),
            ", ".join(f for f in reading.formats if f != "JPEG"),
            _some(reading.misnamed),
        )
    converted = {mode: n for mode, n in reading.modes.items() if mode != "RGB"}
    if converted:
        log.info("%s: converted to RGB: %s", where, ", ".join(f"{n} {mode}" for mode, n in sorted(converted.items())))
    if reading.empty_texts:
        log.warning("%s: %d empty texts (ids %s)", where, len(reading.empty_texts), _some(reading.empty_texts))
    others = {how: n for how, n in reading.encodings.items() if how != "utf-8"}
    if others:
        log.info(
            "%s: texts not in UTF-8 were decoded as %s",
            where,
            ", ".join(f"{how} ({n})" for how, n in sorted(others.items())),
        )


def _some(ids: Sequence[str], n: int = 10) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def unreadable_error(unreadable: dict[str, str], where: str) -> DataError:
    lines = [f"  {why}" for why in list(unreadable.values())[:50]]
    more = f"\n  ... and {len(unreadable) - 50} more" if len(unreadable) > 50 else ""
    return DataError(
        f"{where}: {len(unreadable)} samples cannot be read:\n"
        + "\n".join(lines)
        + more
        + "\nFix or restore these files, or skip them with --data-option skip_unreadable=true (they are then counted in the log and the result)."
    )


def split_tensors(name: str, samples: Sequence[Sample]) -> Split:
    tensors = {}
    if samples and all(sample.label is not None for sample in samples):
        tensors["label"] = torch.tensor([sample.label for sample in samples], dtype=torch.long)
    elif not samples:
        tensors["label"] = torch.zeros(0, dtype=torch.long)
    raw = {"raw_text": [sample.text for sample in samples], "image": [sample.image for sample in samples]}
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

    task = TASK
    inputs = ("raw_text", "image")
    folder: ClassVar[str] = ""  # below the data root; the data root itself also works
    fractions: ClassVar[tuple[float, float, float]] = (0.8, 0.1, 0.1)
    default_split_seed: ClassVar[int] = 42
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
        self.split_seed = self.default_split_seed if split_seed is None else _integer(split_seed, "split_seed")
        self.skip_unreadable = _flag(skip_unreadable, "skip_unreadable")

    @property
    def directory(self) -> Path:
        """The dataset's folder: <root>/<folder> when it exists, else the data root itself."""
        candidate = self.root / self.folder if self.folder else self.root
        first = next(iter(self.files))
        if self.folder and not (candidate / first).is_file() and (self.root / first).is_file():
            return self.root
        return candidate

    def labelled(self) -> tuple[list[str], list[str], dict[str, Any], dict[str, str]]:
        """(ids, labels, cleaning counts, label files -> SHA-256) after the dataset's cleaning rules."""
        raise NotImplementedError

    def load(self) -> Data:
        folder = self.directory
        ids, labels, cleaning, files = self.labelled()
        if self.split_file is not None:
            assignment = read_split_file(self.split_file)
            known = set(ids)
            if missing := [sample for members in assignment.values() for sample in members if sample not in known]:
                raise DataError(
                    f"{self.name}: {len(missing)} ids of split file {self.split_file} are not among the {len(ids)} labelled samples kept by the cleaning rules "
                    f"(e.g. {_some(missing)}). Is it a split of this dataset?"
                )
            split_info = {
                "kind": "file",
                "path": str(self.split_file),
                "sha256": _sha256_of(self.split_file),
                "unused": len(known) - sum(map(len, assignment.values())),
            }
        else:
            assignment = stratified_split(ids, labels, self.fractions, self.split_seed)
            split_info = {"kind": "stratified", "seed": self.split_seed, "fractions": list(self.fractions)}
        label_of = dict(zip(ids, labels))
        wanted = [sample for split in SPLITS for sample in assignment[split]]
        reading = read_samples(
            folder, wanted, [CLASSES.index(label_of[s]) for s in wanted], where=f"{self.name} ({folder})"
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
            "folder": str(folder),
            "files": files,
            "verified": False,  # no SHA-256 is published for these files
            "synthetic": False,
            "cleaning": cleaning,
            "split": split_info,
            "sizes": {split: len(part) for split, part in splits.items()},
            "labels": {split: _label_counts(part) for split, part in splits.items()},
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
                _some(list(reading.unreadable)),
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


class MVSA(ImageTextDataset):
    """Base for MVSA: labelResultAll.txt holds one (text,image) label pair per annotator and id."""

    annotators: ClassVar[int] = 1
    source = (
        "MVSA (Niu et al., MMM 2016): http://mcrlab.net/research/mvsa-sentiment-analysis-on-multi-view-social-data/ ; "
        "unzip it under the data root (data/{id}.txt, data/{id}.jpg, labelResultAll.txt)"
    )

    def labelled(self) -> tuple[list[str], list[str], dict[str, Any], dict[str, str]]:
        relative = "labelResultAll.txt"
        found = self._check(relative)
        path = self.directory / relative
        ids, labels = [], []
        counts = Counter()
        for number, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
            fields = line.split()
            if not fields or (number == 1 and not fields[0][:1].isdigit()):
                continue  # blank line or the "ID text,image ..." header
            pairs = fields[1:]
            if len(pairs) != self.annotators or not all(_pair(p) for p in pairs):
                raise DataError(
                    f"{path}:{number}: expected an id and {self.annotators} 'text,image' label pair(s) of {'/'.join(CLASSES)}; got {line!r}"
                )
            counts["rows"] += 1
            votes = [clean_pair(*_pair(p)) for p in pairs]
            label = votes[0] if self.annotators == 1 else majority(votes)
            if label is None:
                counts["discarded_conflict" if self.annotators == 1 else "discarded_no_majority"] += 1
                continue
            ids.append(fields[0])
            labels.append(label)
        if len(set(ids)) != len(ids):
            duplicated = [sample for sample, n in Counter(ids).items() if n > 1]
            raise DataError(f"{path}: ids appear more than once: {_some(duplicated)}")
        counts["kept"] = len(ids)
        return ids, labels, dict(counts), {relative: found["sha256"]}


class MVSASingle(MVSA):
    """MVSA-Single: 4,869 tweets with one annotator's text and image labels; 4,511 after cleaning, split 8:1:1 per label."""

    name = "mvsa-single"
    folder = "MVSA_Single"
    files = {"labelResultAll.txt": None}
    annotators = 1
    published_size = 4511


class MVSAMultiple(MVSA):
    """MVSA-Multiple: 19,600 tweets labelled by three annotators; 17,024 with a majority after cleaning, split 8:1:1."""

    name = "mvsa-multiple"
    folder = "MVSA"
    files = {"labelResultAll.txt": None}
    annotators = 3
    published_size = 17024


class Lab5(ImageTextDataset):
    """Lab5 course data (MVSA-derived): train.txt (guid,tag) split 8:1:1 per label; test_without_label.txt is predicted."""

    name = "lab5"
    folder = "lab5"
    hparams_from = "mvsa-single"  # MVSA-Single tweets: methods without Lab5 settings use their MVSA-Single ones
    files = {"train.txt": None, "test_without_label.txt": None}
    source = "the course's Lab5 archive (train.txt, test_without_label.txt, data/{guid}.txt|jpg); point --data-root at its folder"

    def labelled(self) -> tuple[list[str], list[str], dict[str, Any], dict[str, str]]:
        found = self._check("train.txt")
        rows = self._rows("train.txt", labelled=True)
        ids = [guid for guid, _ in rows]
        return ids, [tag for _, tag in rows], {"rows": len(rows), "kept": len(rows)}, {"train.txt": found["sha256"]}

    def _rows(self, relative: str, *, labelled: bool) -> list[tuple[str, str]]:
        path = self.directory / relative
        if not path.is_file():
            self._check(relative)  # raises the missing-file error
        rows, seen = [], set()
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            line = line.strip()
            if not line or (number == 1 and line.lower().startswith("guid")):
                continue
            guid, sep, tag = (part.strip() for part in line.partition(","))
            if not sep or not guid or (labelled and tag not in CLASSES) or (not labelled and tag not in ("null", "")):
                expected = "|".join(CLASSES) if labelled else "null"
                raise DataError(f"{path}:{number}: expected 'guid,{expected}'; got {line!r}")
            if guid in seen:
                raise DataError(f"{path}:{number}: guid {guid} appears twice")
            seen.add(guid)
            rows.append((guid, tag))
        return rows

    def unlabelled(self) -> Split:
        """The samples of test_without_label.txt (unreadable ones are an error, or skipped and written as null)."""
        rows = self._rows("test_without_label.txt", labelled=False)
        where = f"{self.name} ({self.directory / 'test_without_label.txt'})"
        reading = read_samples(self.directory, [guid for guid, _ in rows], [None] * len(rows), where=where)
        self.skipped_unlabelled = self._unreadable(reading, where)
        return split_tensors("predict", [reading.samples[guid] for guid, _ in rows if guid in reading.samples])

    def write_predictions(self, path: str | Path, ids: Sequence[str], labels: Sequence[str | None]) -> None:
        """guid,tag lines for every guid of test_without_label.txt, in its order and header; unpredicted ones stay null."""
        from msabench import write_atomic

        predicted = dict(zip(ids, labels))
        lines = ["guid,tag"] + [
            f"{guid},{predicted.get(guid) or 'null'}"
            for guid, _ in self._rows("test_without_label.txt", labelled=False)
        ]
        write_atomic(path, "\n".join(lines) + "\n")


# -- synthetic ----------------------------------------------------------------------------------

POSITIVE = [
    "good",
    "great",
    "love",
    "happy",
    "excellent",
    "wonderful",
    "enjoy",
    "best",
    "fun",
    "beautiful",
    "amazing",
    "nice",
]
NEGATIVE = ["bad", "awful", "hate", "boring", "worst", "terrible", "sad", "poor", "annoying", "ugly", "waste", "dull"]
NEUTRAL = ["the", "a", "it", "this", "photo", "day", "city", "street", "people", "car", "table", "window", "today"]


class SyntheticImageText(ImageTextDataset):
    """Synthetic tweets + images with a planted cross-modal signal (words and colour); not comparable to real data.

    Each sample has a text cue t and an image cue v (standard normal). The label is negative /
    neutral / positive as t + v + 0.5 t v falls below -0.7, between, or above 0.7. The text draws
    positive or negative words with probability sigmoid(2.5 t); the image is a small picture whose
    red-blue balance follows v, saved as PNG or JPEG bytes.
    """

    name = "synthetic-imagetext"
    synthetic = True
    source = "generated by msabench"
    files = {}
    sizes: ClassVar[dict[str, int]] = {"train": 480, "valid": 60, "test": 60}
    image_size: ClassVar[int] = 32
    words: ClassVar[int] = 10
    n_unlabelled: ClassVar[int] = 16
    version: ClassVar[int] = 1

    def load(self) -> Data:
        samples = self.generate(sum(self.sizes.values()), seed=zlib.crc32(self.name.encode()), prefix="s")
        splits, start = {}, 0
        for split, size in self.sizes.items():
            splits[split] = split_tensors(split, samples[start : start + size])
            start += size
        provenance = {
            "source": "generated",
            "generator": f"{type(self).__name__} v{self.version}",
            "files": {},
            "verified": True,
            "synthetic": True,
            "split": {"kind": "generated"},
            "sizes": {split: len(part) for split, part in splits.items()},
            "labels": {split: _label_counts(part) for split, part in splits.items()},
        }
        return Data(name=self.name, task=self.task, splits=splits, provenance=provenance, synthetic=True)

    def unlabelled(self) -> Split:
        samples = self.generate(self.n_unlabelled, seed=zlib.crc32(self.name.encode()) + 1, prefix="u")
        for sample in samples:
            sample.label = None
        return split_tensors("predict", samples)

    def generate(self, n: int, *, seed: int, prefix: str) -> list[Sample]:
        from PIL import Image

        rng = np.random.default_rng(seed)
        t, v = rng.standard_normal(n), rng.standard_normal(n)
        score = t + v + 0.5 * t * v
        labels = np.where(score < -0.7, 0, np.where(score > 0.7, 2, 1))
        samples = []
        for i in range(n):
            sentiment = rng.random(self.words) < 0.4
            positive = rng.random(self.words) < 1 / (1 + np.exp(-2.5 * t[i]))
            words = [
                (POSITIVE if pos else NEGATIVE)[rng.integers(12)] if senti else NEUTRAL[rng.integers(len(NEUTRAL))]
                for senti, pos in zip(sentiment, positive)
            ]
            size = self.image_size
            base = np.array([128 + 50 * v[i], 110, 128 - 50 * v[i]])
            pixels = base + 25 * rng.standard_normal((size, size, 3))
            pixels[: size // 2, :, 1] += 40 * np.tanh(v[i])  # a second, spatial cue
            buffer = io.BytesIO()
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB").save(buffer, format="PNG" if i % 2 else "JPEG")
            samples.append(Sample(f"{prefix}{i:05d}", " ".join(words), buffer.getvalue(), int(labels[i])))
        return samples


# -- helpers ------------------------------------------------------------------------------------


def _pair(text: str) -> tuple[str, str] | None:
    parts = text.lower().split(",")
    return (parts[0], parts[1]) if len(parts) == 2 and parts[0] in CLASSES and parts[1] in CLASSES else None


def _label_counts(split: Split) -> dict[str, int]:
    if "label" not in split.tensors:
        return {}
    counts = torch.bincount(split.tensors["label"], minlength=len(CLASSES)).tolist()
    return dict(zip(CLASSES, counts))


def _sha256_of(path: str | Path) -> str | None:
    path = Path(path)
    if path.is_file():
        return sha256(path)
    return None


def _integer(value: Any, option: str) -> int:
    try:
        if isinstance(value, bool) or int(value) != float(value):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise DataError(
            f"--data-option {option}={value}: expected a whole number, e.g. --data-option {option}=42."
        ) from None


def _flag(value: Any, option: str) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise DataError(f"--data-option {option}={value}: expected true or false.")
    return bool(value)
