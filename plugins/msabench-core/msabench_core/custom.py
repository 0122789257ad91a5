"""`mmsa-custom`: any pickle in MMSA's layout with any feature dims, e.g. what MMSA-FET writes.

    msabench run --method lf-dnn --dataset mmsa-custom --data-option path=feats.pkl --data-option family=mosi

The file is read like MMSA's own (the restricted unpickler, then `mmsa_data`'s checks: the layout,
shapes, lengths, labels in range, -inf/NaN zeroed and counted); only the inputs and dims come from
the arrays instead of a declaration. Options:

- ``path=FILE`` (required): the pickle, absolute or relative to the working directory;
- ``family=mosi|sims|classification``: the metrics and the label range: [-3, 3] (MOSI/MOSEI's), [-1, 1]
  (CH-SIMS's), or class ids 0..K-1; [default: mosi];
- ``classes=neg,neu,pos``: classification class names, in id order. Labels are ``classification_labels``
  (ids), or else ``annotations`` (MMSA-FET's strings, matched to the names ignoring case); without
  ``classes=``, the sorted distinct annotations, or ``0..K-1`` for ids;
- ``name=NAME``: the dataset's name in results and leaderboards, ``custom-NAME``; without it
  ``custom-<first 12 hex digits of the file's SHA-256>`` (``-sims`` or ``-classification`` appended for those
  families). The ``custom-`` prefix keeps every file apart from the registered datasets: a custom file never
  shares a table with MOSI. ``path=``, ``name=`` and ``sha256=`` name the data, so unlike other options they
  are not part of a row's variant (the result records the file and its hash);
- ``sha256=HEX``: the file's expected SHA-256; results are marked verified only when it matches (a file that
  does not match is refused unless ``--no-verify``), unverified without it;
- ``hparams_from=DATASET``: whose per-dataset method hyper-parameters apply (e.g. ``mosi``); [default: the
  methods' defaults];
- ``tokenizer=NAME``: the tokenizer behind ``text_bert`` ids (e.g. ``bert-base-uncased``), which ``bert-text``
  loads by default;
- ``repair=true``: clip out-of-range labels and lengths instead of refusing them (counted).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from msabench import DataError, Task
from msabench.formats import MMSADataset, check_file, read_pickle
from msabench.formats import sha256 as sha256_of

FAMILIES = {
    "mosi": Task("regression", "mosi", label_range=(-3.0, 3.0)),
    "sims": Task("regression", "sims", label_range=(-1.0, 1.0)),
    "classification": Task("classification", "classification"),
}
INPUTS = ("text_bert", "text", "audio", "vision")
UNIMODAL = {"regression_labels_T": "label_T", "regression_labels_A": "label_A", "regression_labels_V": "label_V"}
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SOURCE = "the feature extractor that wrote it (e.g. MMSA-FET, https://github.com/thuiar/MMSA-FET)"


class MMSACustom(MMSADataset):
    """Any MMSA-layout pickle (e.g. MMSA-FET's output), any dims: --data-option path=FILE family=mosi|sims|..."""

    name = "mmsa-custom"
    task = FAMILIES["mosi"]
    inputs = INPUTS  # until the file is read: then the inputs its arrays hold
    source = SOURCE
    identity_options = ("path", "name", "sha256")  # the file: its name and hash are the dataset, not a variant

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        verify: bool = True,
        repair: bool = False,
        path: str | None = None,
        family: str = "mosi",
        classes: str | list[str] | None = None,
        name: str | None = None,
        sha256: str | None = None,
        hparams_from: str | None = None,
        tokenizer: str | None = None,
    ):
        super().__init__(root, verify=verify, repair=repair)
        if family not in FAMILIES:
            raise DataError(f"--data-option family={family}: expected one of {', '.join(FAMILIES)}.")
        self.family = family
        self.task = FAMILIES[family]
        self.classes = _names(classes)
        if self.classes is not None:
            if family != "classification":
                raise DataError(f"--data-option classes= names classification classes; family is {family}.")
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise DataError(f"--data-option classes={','.join(self.classes)}: give two or more distinct names.")
            self.task = replace(self.task, classes=tuple(self.classes))
        self.path = Path(path).expanduser().absolute() if path is not None else None
        self.custom_name = _kebab(name, "name") if name is not None else None
        if self.custom_name is not None:
            self.name = f"custom-{self.custom_name}"
        elif self.path is not None and self.path.is_file():  # named now, so a plan shows the folder a run writes
            self.name = self._digest_name(sha256_of(self.path))
        if sha256 is not None and not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
            raise DataError(f"--data-option sha256={sha256}: expected the file's SHA-256, 64 hexadecimal digits.")
        self.expected = sha256.lower() if sha256 is not None else None
        self.hparams_from = _kebab(hparams_from, "hparams_from") if hparams_from is not None else None
        self.tokenizer = str(tokenizer) if tokenizer is not None else None

    def _digest_name(self, digest: str) -> str:
        """custom-<digest>[-family]: one file read as two families would otherwise mix metrics in one table."""
        return f"custom-{digest[:12]}" + (f"-{self.family}" if self.family != "mosi" else "")

    def load(self):
        if self.path is None:
            raise DataError(
                "mmsa-custom reads one MMSA-layout pickle: pass --data-option path=FILE "
                "(and --data-option family=mosi|sims|classification)."
            )
        if not self.path.is_file():
            raise DataError(f"mmsa-custom: --data-option path={self.path}: no such file. Get it from {SOURCE}.")
        found = check_file(
            self.path.parent, self.path.name, self.expected, verify=self.verify, dataset=self.name, source=SOURCE
        )
        if self.custom_name is None:
            self.name = self._digest_name(found["sha256"])
        raw = read_pickle(self.path)
        train = raw.get("train") if isinstance(raw, dict) else None
        if isinstance(train, dict):
            self.inputs = tuple(key for key in INPUTS if key in train)
            if not self.inputs:
                raise DataError(
                    f"{self.path}: its train split holds none of {', '.join(INPUTS)} (has {sorted(train)})."
                )
            if self.task.kind == "classification":
                self.task = self._classes(raw)
            else:
                self.labels = ("label", *(ours for key, ours in UNIMODAL.items() if key in train))
        provenance = {
            "source": "file",
            "files": {self.path.name: found["sha256"]},
            "verified": found["verified"],
            "path": self.path.name,  # the file, by name and SHA-256: no path of this machine in a result
            "family": self.family,
        }
        data = self.from_mmsa(raw, provenance, where=str(self.path))
        if "text_bert" in data.splits["train"].tensors:  # the ids' vocabulary: at least the largest id + 1
            largest = max(int(split.tensors["text_bert"][:, 0].max()) for split in data.splits.values() if len(split))
            data = replace(data, vocab_size=largest + 1, tokenizer=self.tokenizer)
        return data

    def _classes(self, raw: dict[str, Any]) -> Task:
        """The classification task with its class names; MMSA-FET's string annotations turned into class ids."""
        splits = [raw.get(split) for split in ("train", "valid", "test")]
        if all(isinstance(part, dict) and "classification_labels" in part for part in splits):
            if self.classes is not None:
                return self.task
            try:
                largest = max(int(np.max(part["classification_labels"], initial=0)) for part in splits)
            except (TypeError, ValueError):  # not whole numbers: the reader says where
                largest = 1
            return replace(self.task, classes=tuple(str(i) for i in range(max(largest + 1, 2))))
        if not all(isinstance(part, dict) and "annotations" in part for part in splits):
            raise DataError(
                f"{self.path}: family=classification needs classification_labels (class ids) or annotations "
                "(class names) in every split."
            )
        annotations = [[str(a).strip() for a in np.asarray(part["annotations"]).reshape(-1)] for part in splits]
        classes = self.classes or sorted({a for split in annotations for a in split})
        ids = {name.lower(): i for i, name in enumerate(classes)}
        for split, part, values in zip(("train", "valid", "test"), splits, annotations, strict=True):
            unknown = sorted({a for a in values if a.lower() not in ids})
            if unknown:
                raise DataError(
                    f"{self.path}: {split}/annotations holds {', '.join(map(repr, unknown[:5]))}, which are not among "
                    f"the classes {', '.join(classes)}. Name every class: --data-option classes=A,B,C."
                )
            part["classification_labels"] = np.array([ids[a.lower()] for a in values], dtype=np.int64)
        return replace(self.task, classes=tuple(classes))


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    names = value if isinstance(value, list) else str(value).split(",")
    return [str(name).strip() for name in names if str(name).strip()]


def _kebab(value: Any, option: str) -> str:
    text = str(value)
    if not NAME.match(text):
        raise DataError(f"--data-option {option}={value}: use a kebab-case name such as my-features.")
    return text
