"""`mosi-bclstm`: CMU-MOSI as bc-LSTM (Poria et al., ACL 2017) releases it, joined with the SDK's continuous labels.

The release (declare-lab/multimodal-deep-learning, ``bc-LSTM/data/``), read as its own ``create_data.py`` reads it:

- ``transcripts.csv``: no header; utterance id ``<video>_<k>`` (k: the 1-based segment number in the video), the
  upper-case transcript, a per-video number, the binary label (1 = positive);
- ``text_train.csv`` / ``text_test.csv``: column 0 is a row index into ``transcripts.csv``, then 100 text features;
- ``{text,audio,video}/<m>_{train,test}0.csv``: no header, no index; row i belongs to row i's index above: the
  features (text-CNN 100, openSMILE 73, 3D-CNN 100), then the binary label as the last column.

Utterance ``<video>_<k>`` is the k-th segment of ``<video>`` in ``CMU_MOSI_Opinion_Labels.csd`` in stored row order
(not sorted by start time); its continuous score is the label. The loader checks that (score >= 0) equals the
release's binary label for every utterance, and that the two copies of the text features agree.
"""

from __future__ import annotations

import csv
import importlib.metadata
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msabench import Data, DataError, Dataset, Split, Task
from msabench.formats import check_file, whole

from .csd import open_csd
from .folds import SOURCES, fold_of
from .tokens import tokenize

log = logging.getLogger("msabench")

LABELS = "CMU_MOSI_Opinion_Labels.csd"
TRANSCRIPTS = "bc-lstm/transcripts.csv"
# our modality -> (the release's folder and file prefix, feature dim)
MODALITIES = {"text": ("text", 100), "audio": ("audio", 73), "vision": ("video", 100)}
RELEASE_SPLITS = ("train", "test")
READER = 1  # the reading rules' revision, recorded with the data: it changes when the same files would load differently
SPLITS = ("bclstm", "standard")
VALID_FRACTION = 0.2  # bc-LSTM's lstm.py: validation_split=0.2 of the training videos
DEFAULT_SEED = 42  # like the image-text datasets' split seed: independent of the training seeds

# SHA-256 of the files as the SDK and bc-LSTM's repository distribute them (none is published; computed from
# those copies). A file that differs is refused unless --no-verify (results are then marked unverified).
FILES = {
    LABELS: "aef5f4617cdb067cc7606bb798eb6452c3de45f0f21cb3427be33c4d8c7fe852",
    TRANSCRIPTS: "e7689e6d70720addd2a6b316419d245a68839c32b014ff426c406063ee777466",
    "bc-lstm/text_train.csv": "73770b6302ad0f7a51f4eddcae6788efde4d0b6802e09f78249d5b538d1c1d67",
    "bc-lstm/text_test.csv": "f3b735070bf07ceff7a6ef6c8f4c32757e988de484e35bd6d38b2aecef851a59",
    "bc-lstm/text/text_train0.csv": "cc327045db6cc361a08b4037b97bb24de4ddb5efb381468c4835cc4a60674668",
    "bc-lstm/text/text_test0.csv": "a343e22272919d1384c2075dbcdd5fef5aa9f9366b0552a83f7c3147b64b047a",
    "bc-lstm/audio/audio_train0.csv": "5435398a54664e7b00304587dc59ae84a438852be033c2a2fba779588624a2a1",
    "bc-lstm/audio/audio_test0.csv": "ddd17eeefd3d951d51d4e2ef8a0d132652d8161e1886f71eb7262b7a14bffff6",
    "bc-lstm/video/video_train0.csv": "b6efc0413132d627efd06f67f1706830e775e90af9a75696f535c48dbc73f12f",
    "bc-lstm/video/video_test0.csv": "cab836253d81100f59d533fa2ff65cd53c486be3ec9fd82203c5e25a7a77265f",
}
SOURCE = (
    f"the CMU-MultimodalSDK's {LABELS} (https://github.com/CMU-MultiComp-Lab/CMU-MultimodalSDK, CMU_MOSI) and "
    "bc-LSTM's release (https://github.com/declare-lab/multimodal-deep-learning, bc-LSTM/data/: transcripts.csv, "
    "text_{train,test}.csv, {text,audio,video}/*0.csv, kept under bc-lstm/); put both in <data root>/cmu-mosi/"
)
LEAK = (
    "bc-LSTM's text-CNN and 3D-CNN feature extractors were trained on its own train videos, which include {n} of "
    "the standard test fold's {of} videos: on split=standard these features have seen most test videos "
    "(use split=bclstm for results with them)"
)
SEEN_VALID = (
    "bc-LSTM's text-CNN and 3D-CNN feature extractors were trained on its train videos, and the validation videos "
    "are train videos: validation scores run high (some methods near-perfect from the first epoch), so model "
    "selection on them has little to choose on; the test videos are unseen"
)


@dataclass
class Utterance:
    """One row of the release, joined with its label."""

    row: int  # its row in transcripts.csv (0-based)
    id: str
    video: str
    position: int  # k: its segment number in the video (1-based)
    text: str
    binary: int  # the release's label: 1 = positive
    split: str = ""  # the release's split: train or test ("" until a split file lists it)
    order: int = -1  # its row in that split's feature files
    score: float = float("nan")  # the SDK's sentiment score, in [-3, 3]


class MOSIbcLSTM(Dataset):
    """CMU-MOSI as bc-LSTM releases it (utterance-level text-CNN, openSMILE, 3D-CNN vectors) with the SDK's scores.

    Inputs: ``text`` (100-d), ``audio`` (73-d), ``vision`` (100-d) as sequences of length 1 (``*_lengths`` = 1),
    ``raw_text`` (the release's upper-case transcript), and ``text_bert`` ([N, 3, L] ids, mask, segments; L the
    longest transcript) when a tokenizer is named. Besides the label, each split holds ``video`` (the index of the
    utterance's video in ``provenance["videos"]``, sorted ids) and ``position`` (k); ids are ``<video>_<k>``, and
    each split lists utterances by video, then by k (bc-LSTM's order within a video). The videos are its groups
    (``groups = "video"``): methods that batch whole groups read each video's utterances as one sequence.

    Options (``--data-option KEY=VALUE``):

    - ``split=bclstm`` (default): bc-LSTM's speaker-independent split, 62 train / 31 test videos, with a validation
      set of whole train videos carved out: ``valid_fraction`` (default 0.2, bc-LSTM's ``validation_split``) of
      them, rounded, drawn with ``split_seed`` (default 42); the chosen videos are recorded in the provenance.
      bc-LSTM's feature extractors were trained on the train videos, so they have seen the validation videos:
      validation scores run high and model selection has little to choose on (the test videos are unseen);
      ``split=standard``: the SDK's standard folds, 52 / 10 / 31 videos (1,284 / 229 / 686 utterances); a warning
      says that bc-LSTM's extractors were trained on most of its test videos;
    - ``tokenizer=NAME_OR_FOLDER``: tokenize the transcripts into ``text_bert`` with transformers' AutoTokenizer (a
      folder, a name under ``$MSABENCH_MODELS``, or a hub name); BERT-family encoders then load that model.

    Metrics are MOSI's; methods use their MOSI hyper-parameters (``hparams_from = "mosi"``).
    """

    name = "mosi-bclstm"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    inputs = ("text", "audio", "vision", "raw_text", "text_bert")  # text_bert with a tokenizer (see load)
    dims = {"text": 100, "audio": 73, "vision": 100}
    files = FILES
    source = SOURCE
    hparams_from = "mosi"
    groups = "video"  # the utterances of a video, contiguous and in order in every split
    folder = "cmu-mosi"
    sizes = {"train": 1150, "valid": 297, "test": 752}  # split=bclstm with the default seed and fraction

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        verify: bool = True,
        split: str = "bclstm",
        split_seed: int | None = None,
        valid_fraction: float | None = None,
        tokenizer: str | None = None,
    ):
        super().__init__(root, verify=verify)
        nested = self.root / self.folder
        if (nested / LABELS).is_file() or not (self.root / LABELS).is_file():
            self.root = nested  # <data root>/cmu-mosi, or the data root itself when it holds the files
        if split not in SPLITS:
            raise DataError(f"--data-option split={split}: expected {' or '.join(SPLITS)}.")
        if split == "standard" and (split_seed is not None or valid_fraction is not None):
            raise DataError(
                "--data-option split_seed / valid_fraction carve bc-LSTM's validation videos (split=bclstm); "
                "split=standard uses the SDK's own validation fold."
            )
        self.split = split
        self.split_seed = DEFAULT_SEED if split_seed is None else whole(split_seed, "split_seed")
        fraction = VALID_FRACTION if valid_fraction is None else valid_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise DataError(f"--data-option valid_fraction={valid_fraction}: expected a number between 0 and 1.")
        self.valid_fraction = float(fraction)
        self.tokenizer = str(tokenizer) if tokenizer is not None else None

    def load(self, inputs: tuple[str, ...] | list[str] | None = None) -> Data:
        """The splits as tensors. `inputs` (what the run's encoders read) may ask for ``text_bert``, which needs a
        tokenizer; without one the data holds every other input."""
        if inputs is not None and "text_bert" in inputs and self.tokenizer is None:
            raise DataError(
                f"{self.name}: text_bert (BERT token ids) is made from the transcripts by a tokenizer: pass "
                "--data-option tokenizer=NAME_OR_FOLDER (e.g. a BERT-uncased model such as all-MiniLM-L6-v2 in "
                "$MSABENCH_MODELS)."
            )
        if self.tokenizer is None:
            self.inputs = tuple(key for key in type(self).inputs if key != "text_bert")
        found = {relative: self._check(relative) for relative in self.files}
        utterances = self._transcripts()
        features = {m: {} for m in MODALITIES}  # modality -> release split -> [rows of that split, dim]
        for part in RELEASE_SPLITS:
            index, copy = self._index(part, utterances)
            for modality in MODALITIES:
                features[modality][part] = self._features(modality, part, index, utterances)
            self._same_text(part, copy, features["text"][part])
        used = [u for u in utterances if u.split]
        agreement = self._scores(used)
        assignment, split_info = self._assign(used)
        videos = sorted({u.video for u in used})
        number = {video: i for i, video in enumerate(videos)}
        splits, nonfinite = {}, {}
        for split, members in assignment.items():
            tensors: dict[str, torch.Tensor] = {}
            for modality in MODALITIES:
                rows = np.stack([features[modality][u.split][u.order] for u in members]).astype(np.float32)
                bad = ~np.isfinite(rows)
                if count := int(bad.sum()):
                    rows[bad] = 0
                    nonfinite[f"{split}/{modality}"] = count
                tensors[modality] = torch.from_numpy(rows).reshape(len(members), 1, -1)
                tensors[f"{modality}_lengths"] = torch.ones(len(members), dtype=torch.long)
            tensors["label"] = torch.tensor([u.score for u in members], dtype=torch.float32)
            tensors["video"] = torch.tensor([number[u.video] for u in members], dtype=torch.long)
            tensors["position"] = torch.tensor([u.position for u in members], dtype=torch.long)
            raw = {"raw_text": [u.text for u in members]}
            splits[split] = Split(split, [u.id for u in members], tensors, raw)
        for key, count in nonfinite.items():
            log.warning("%s: %s had %d non-finite values, set to 0", self.name, key, count)
        vocab_size, tokenizer_info = None, None
        if self.tokenizer is not None:
            vocab_size, tokenizer_info = tokenize(self.name, self.tokenizer, splits)
        provenance = {
            "source": "file",
            "files": {relative: info["sha256"] for relative, info in found.items()},
            "verified": all(info["verified"] for info in found.values()),
            "synthetic": False,
            "loader": {"plugin": "msabench-cmu", "version": _version(), "reader": f"{self.name}/{READER}"},
            "split": split_info,
            "sizes": {split: len(part) for split, part in splits.items()},
            "videos": videos,
            "label_agreement": agreement,
            "nonfinite": nonfinite,
            "caveat": self._caveat(split_info),  # said on the leaderboard page
            **({"tokenizer": tokenizer_info} if tokenizer_info else {}),
        }
        return Data(
            name=self.name,
            task=self.task,
            splits=splits,
            provenance=provenance,
            vocab_size=vocab_size,
            tokenizer=self.tokenizer,
            hparams_from=self.hparams_from,
            groups=self.groups,
        )

    def _caveat(self, split: dict[str, Any]) -> str:
        """What the features have seen of this split's validation or test videos."""
        if split["kind"] == "standard":
            return LEAK.format(n=split["test_videos_seen_by_extractors"], of=split["test_videos"])
        return SEEN_VALID

    # -- reading ---------------------------------------------------------------------------------------------

    def _check(self, relative: str) -> dict[str, Any]:
        return check_file(
            self.root, relative, self.files[relative], verify=self.verify, dataset=self.name, source=self.source
        )

    def _transcripts(self) -> list[Utterance]:
        path = self.root / TRANSCRIPTS
        utterances, seen = [], {}
        for number, row in _rows(path, 4, "utterance id, transcript, video number, binary label"):
            match = re.fullmatch(r"(.+)_([1-9][0-9]*)", row[0])
            if match is None:
                raise DataError(f"{path}:{number}: utterance id {row[0]!r} is not <video>_<k> (k = 1, 2, ...).")
            if row[3] not in ("0", "1"):
                raise DataError(f"{path}:{number}: the binary label is {row[3]!r}; expected 0 or 1.")
            if row[0] in seen:
                raise DataError(f"{path}:{number}: utterance {row[0]} is also on line {seen[row[0]]}.")
            seen[row[0]] = number
            video, k = match.group(1), int(match.group(2))
            utterances.append(Utterance(len(utterances), row[0], video, k, row[1], int(row[3]), ""))
        if not utterances:
            raise DataError(f"{path} holds no utterances.")
        return utterances

    def _index(self, part: str, utterances: list[Utterance]) -> tuple[list[int], np.ndarray]:
        """The transcripts rows of a release split (column 0 of text_<part>.csv), and the text features beside them."""
        path = self.root / f"bc-lstm/text_{part}.csv"
        index, copy = [], []
        for number, row in _rows(path, 1 + MODALITIES["text"][1], "a transcripts.csv row index, 100 text features"):
            value = _number(row[0], path, number)
            if value != int(value) or not 0 <= value < len(utterances):
                raise DataError(
                    f"{path}:{number}: column 0 is {row[0]!r}; expected a row number of transcripts.csv "
                    f"(0..{len(utterances) - 1})."
                )
            if utterances[int(value)].split:
                raise DataError(
                    f"{path}:{number}: transcripts.csv row {int(value)} is already in another row or split."
                )
            utterances[int(value)].split, utterances[int(value)].order = part, len(index)
            index.append(int(value))
            copy.append([_number(text, path, number) for text in row[1:]])
        return index, np.array(copy, dtype=np.float64).reshape(len(index), -1)

    def _features(self, modality: str, part: str, index: list[int], utterances: list[Utterance]) -> np.ndarray:
        """[rows, dim] features of one modality and release split, their label column checked against transcripts."""
        prefix, dim = MODALITIES[modality]
        relative = f"bc-lstm/{prefix}/{prefix}_{part}0.csv"
        path = self.root / relative
        rows = _rows(path, dim + 1, f"{dim} {prefix} features, then the binary label")
        if len(rows) != len(index):
            raise DataError(
                f"{path} has {len(rows)} rows; bc-lstm/text_{part}.csv indexes {len(index)} utterances (row i of each "
                "belongs to the same utterance)."
            )
        values = np.empty((len(rows), dim + 1), dtype=np.float64)
        for i, (number, row) in enumerate(rows):
            values[i] = [_number(value, path, number) for value in row]
        for i, (number, _) in enumerate(rows):
            utterance = utterances[index[i]]
            if values[i, -1] != utterance.binary:
                raise DataError(
                    f"{path}:{number}: the label column is {values[i, -1]:g}, but utterance {utterance.id} (the row "
                    f"text_{part}.csv indexes) has binary label {utterance.binary} in transcripts.csv."
                )
        return values[:, :-1]

    def _same_text(self, part: str, copy: np.ndarray, text: np.ndarray) -> None:
        """text_<part>.csv repeats the text features of text/text_<part>0.csv beside its index: they must agree."""
        path = self.root / f"bc-lstm/text_{part}.csv"
        differ = np.flatnonzero(np.abs(copy - text).max(axis=1) > 1e-6 * (1 + np.abs(text).max(axis=1)))
        if len(differ):
            raise DataError(
                f"{path}:{differ[0] + 1}: its text features differ from row {differ[0] + 1} of "
                f"bc-lstm/text/text_{part}0.csv ({len(differ)} rows do): the files are not from one release."
            )

    def _scores(self, used: list[Utterance]) -> dict[str, int]:
        """Each utterance's score from the label file (its k-th stored segment), checked against the release."""
        path = self.root / LABELS
        transcripts = self.root / TRANSCRIPTS
        low, high = self.task.label_range
        with open_csd(path) as labels:
            named = labels.dataset
            if named is not None and re.sub(r"[^a-z]", "", named.lower()) not in ("cmumosi", "mosi"):
                raise DataError(
                    f"{path}: its metadata names dataset {named!r}; {self.name} needs CMU-MOSI's labels ({LABELS})."
                )
            wanted = sorted({u.video for u in used})
            if not any(video in labels for video in wanted):
                raise DataError(
                    f"{path} holds none of the release's {len(wanted)} videos (its {len(labels)} videos are e.g. "
                    f"{', '.join(labels.videos[:3])}): is it the label file of another dataset?"
                )
            scores = {}
            for video in wanted:
                if video not in labels:
                    first = next(u for u in used if u.video == video)
                    raise DataError(
                        f"{transcripts}:{first.row + 1}: utterance {first.id} has no label: {path.name} has no "
                        f"video {video}."
                    )
                segments = labels[video]
                if segments.features.shape[1] != 1 or not np.issubdtype(segments.features.dtype, np.number):
                    raise DataError(
                        f"{path}: video {video} has {segments.features.shape[1]} {segments.features.dtype} values per "
                        "segment; a label sequence has one number (the sentiment score)."
                    )
                scores[video] = segments.features[:, 0].astype(np.float64)
        for u in used:
            column = scores[u.video]
            if u.position > len(column):
                raise DataError(
                    f"{transcripts}:{u.row + 1}: utterance {u.id} has no label: {path.name} has {len(column)} "
                    f"segments for video {u.video}."
                )
            u.score = float(column[u.position - 1])
            if not low <= u.score <= high:
                raise DataError(
                    f"{path}: video {u.video}, segment {u.position} ({u.id}) has score {u.score:g}, outside "
                    f"{low:g}..{high:g}."
                )
        disagree = [u for u in used if (u.score >= 0) != (u.binary == 1)]
        if disagree:
            u = disagree[0]
            raise DataError(
                f"{path} and {transcripts}: (score >= 0) differs from the release's binary label for {len(disagree)} "
                f"of {len(used)} utterances (first: {u.id}, score {u.score:g}, label {u.binary}); the labels do not "
                "belong to this release's utterance ids."
            )
        return {"utterances": len(used), "agree": len(used), "zero_scores": sum(u.score == 0 for u in used)}

    def _assign(self, used: list[Utterance]) -> tuple[dict[str, list[Utterance]], dict[str, Any]]:
        """Utterances per split (by video, then k), and the split's record."""
        if self.split == "standard":
            folds = fold_of("mosi")
            if missing := sorted({u.video for u in used} - set(folds)):
                raise DataError(
                    f"{self.name}: videos {', '.join(missing[:5])} are in none of the SDK's standard MOSI folds."
                )
            split_of = {u.video: folds[u.video] for u in used}
            trained = {u.video for u in used if u.split == "train"}
            test = {video for video, split in split_of.items() if split == "test"}
            seen = len(test & trained)
            log.warning("%s: split=standard: %s", self.name, LEAK.format(n=seen, of=len(test)))
            info = {
                "kind": "standard",
                "source": SOURCES["mosi"],
                "test_videos_seen_by_extractors": seen,
                "test_videos": len(test),
            }
        else:
            train = sorted({u.video for u in used if u.split == "train"})
            count = max(1, round(len(train) * self.valid_fraction))
            if count >= len(train):
                raise DataError(
                    f"--data-option valid_fraction={self.valid_fraction}: it leaves no training video of {len(train)}."
                )
            order = np.random.default_rng(self.split_seed).permutation(len(train))
            valid = sorted(train[i] for i in order[:count])
            split_of = {u.video: u.split for u in used}
            split_of.update(dict.fromkeys(valid, "valid"))
            info = {
                "kind": "bclstm",
                "seed": self.split_seed,
                "valid_fraction": self.valid_fraction,
                "valid_videos": valid,
            }
        assignment = {split: [] for split in ("train", "valid", "test")}
        for u in sorted(used, key=lambda u: (u.video, u.position)):
            assignment[split_of[u.video]].append(u)
        if empty := [split for split, members in assignment.items() if not members]:
            raise DataError(f"{self.name}: split={self.split} leaves no utterance in {', '.join(empty)}.")
        info["videos"] = {split: len({u.video for u in members}) for split, members in assignment.items()}
        return assignment, info


def _rows(path: Path, columns: int, what: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-empty row of a headerless CSV, each with `columns` fields."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path} cannot be read as CSV ({type(error).__name__}: {error}).") from None
    for number, row in rows:
        if len(row) != columns:
            raise DataError(
                f"{path}:{number}: expected {columns} columns{f' ({what})' if what else ''}; found {len(row)}"
                + (" (the file may be truncated)." if number == rows[-1][0] else ".")
            )
    return rows


def _number(text: str, path: Path, number: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}:{number}: {text!r} is not a number.") from None


def _version() -> str:
    try:
        return importlib.metadata.version("msabench-cmu")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
