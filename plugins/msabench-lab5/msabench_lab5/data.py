"""The Lab5 course data: train.txt (guid,tag), test_without_label.txt (guid,null), data/{guid}.txt|jpg.

The labelled samples are split 8:1:1 per label (seeded, or a split file); `msabench predict` labels
test_without_label.txt and writes it back in the same format. `write_lab5` writes a small folder of
generated samples in this format, for tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from msabench import DataError, Split
from msabench.formats import (
    ImageTextDataset,
    SyntheticImageText,
    index_lines,
    open_image,
    read_samples,
    safe_id,
    split_tensors,
    write_atomic,
)

CLASSES = ImageTextDataset.task.classes
# lab5-dev's files (the 1,500-pair subset), so that neither dataset reads the other's: their results never mix.
DEV_FILES = {
    "train.txt": "845e8c6d05a72c432c2e819cc25707672b3408b6f969562d6e42bd6114790d6f",
    "test_without_label.txt": "886084a09799502574d0e5fc756231e26e852f7d236ba2a175da3b0ff19075d4",
}


class Lab5(ImageTextDataset):
    """Lab5 course data (MVSA-derived): train.txt (guid,tag) split 8:1:1 per label; predicts test_without_label.txt."""

    name = "lab5"
    folder = "lab5"
    hparams_from = "mvsa-single"  # MVSA-Single tweets: methods without Lab5 settings use their MVSA-Single ones
    files = {"train.txt": None, "test_without_label.txt": None}
    belongs_to: ClassVar[dict[str, str]] = {DEV_FILES["train.txt"]: "lab5-dev"}  # train.txt SHA-256 -> its dataset
    source = (
        "the course's Lab5 archive (train.txt, test_without_label.txt, data/{guid}.txt|jpg); "
        "point --data-root at its folder"
    )

    def labelled(self) -> tuple[list[str], list[str], dict[str, Any], dict[str, str]]:
        found = self._check("train.txt")
        if other := self.belongs_to.get(found["sha256"]):
            raise DataError(
                f"{self.directory / 'train.txt'} is {other}'s: run it as --dataset {other}, so that the two datasets' "
                "results never mix."
            )
        rows = self._rows("train.txt", labelled=True)
        ids = [guid for guid, _ in rows]
        return ids, [tag for _, tag in rows], {"rows": len(rows), "kept": len(rows)}, {"train.txt": found["sha256"]}

    def _rows(self, relative: str, *, labelled: bool) -> list[tuple[str, str]]:
        path = self.directory / relative
        if not path.is_file():
            self._check(relative)  # raises the missing-file error
        rows, seen = [], set()
        for number, line in index_lines(path):
            line = line.strip()
            if not line or (number == 1 and line.lower().startswith("guid")):
                continue
            guid, sep, tag = (part.strip() for part in line.partition(","))
            if not sep or not guid or (labelled and tag not in CLASSES) or (not labelled and tag not in ("null", "")):
                expected = "|".join(CLASSES) if labelled else "null"
                raise DataError(f"{path}:{number}: expected 'guid,{expected}'; got {line!r}")
            safe_id(guid, f"{path}:{number}")
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
        """guid,tag lines for every guid of test_without_label.txt, in its order and header; unpredicted ones: null."""
        predicted = dict(zip(ids, labels, strict=True))
        lines = ["guid,tag"] + [
            f"{guid},{predicted.get(guid) or 'null'}"
            for guid, _ in self._rows("test_without_label.txt", labelled=False)
        ]
        write_atomic(path, "\n".join(lines) + "\n")


class Lab5Dev(Lab5):
    """The 1,500 labelled Lab5 tweet text+image pairs of lab5-dev, split 8:1:1 per label, apart from the full lab5.

    The same files and reader as `lab5` (train.txt, test_without_label.txt with 100 unlabelled pairs,
    data/{guid}.txt|jpg), under its own name so that its results and leaderboard never mix with the full data's,
    and the same split rule: per label, round(0.8 n) train and round(0.1 n) valid samples drawn with a permutation
    seeded by ``split_seed`` (default 42), test the rest: 1,201 / 151 / 148 of 896 positive, 157 neutral and 447
    negative pairs. Its two label files are pinned by SHA-256: another train.txt (the full Lab5 data's, say) is
    refused unless ``--no-verify``.
    """

    name = "lab5-dev"
    folder = "lab5-dev"
    files = DEV_FILES
    belongs_to: ClassVar[dict[str, str]] = {}
    sizes = {"train": 1201, "valid": 151, "test": 148}
    source = (
        "the project's lab5-dev folder: 1,500 labelled and 100 unlabelled pairs of the course's Lab5 data "
        "(train.txt, test_without_label.txt, data/{guid}.txt|jpg); point --data-root at it or at the folder above it"
    )


class _Samples(SyntheticImageText):
    name = "lab5-generated"
    image_size = 16
    words = 6


def write_lab5(folder: str | Path, n: int = 30, unlabelled: int = 6, seed: int = 0) -> Path:
    """Write a small Lab5-format folder (train.txt, test_without_label.txt, data/{guid}.txt|jpg) of generated
    samples, for tests of the loader and of `msabench predict`; returns the folder. Images are 16 px JPEGs."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    samples = _Samples().generate(n + unlabelled, seed=seed, prefix="")
    train, test = ["guid,tag"], ["guid,tag"]
    for i, sample in enumerate(samples):
        guid = str(i + 1)
        image, _ = open_image(sample.image)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        (folder / "data" / f"{guid}.txt").write_bytes(sample.text.encode())
        (folder / "data" / f"{guid}.jpg").write_bytes(buffer.getvalue())
        (train if i < n else test).append(f"{guid},{CLASSES[sample.label] if i < n else 'null'}")
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test_without_label.txt").write_text("\n".join(test) + "\n")
    return folder
