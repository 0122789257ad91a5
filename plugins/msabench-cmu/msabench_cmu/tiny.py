"""A tiny CMU-MOSI in the published formats, for tests: the SDK's label .csd (written with h5py) and bc-LSTM's CSVs.

Five real MOSI video ids, so that the SDK's standard folds apply: 2iD-tVS8NPw and 8d-gEyoeBzc (standard train),
WKA5OygbEKI (valid), tmZoasNr4rU and zhpQhgha_KU (test). bc-LSTM's release puts the first four in its train split
and zhpQhgha_KU in its test split. Every feature of utterance <video>_<k> is `code(video, k)` (audio + 0.25,
vision + 0.5), so a test can tell which row landed where.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .csd import write_csd

SCORES = {  # the label file's stored rows; 8d-gEyoeBzc's intervals are not in time order (as in two real videos)
    "2iD-tVS8NPw": [1.2, -0.4, 0.0, 2.0],
    "8d-gEyoeBzc": [-1.0, 0.6, -2.2],
    "WKA5OygbEKI": [0.8, -0.2, 1.4],
    "tmZoasNr4rU": [-3.0, 2.6],
    "zhpQhgha_KU": [0.4, -1.6, 3.0, -0.6],
}
RELEASE_TRAIN = ("2iD-tVS8NPw", "8d-gEyoeBzc", "WKA5OygbEKI", "tmZoasNr4rU")
DIMS = {"text": 100, "audio": 73, "video": 100}
OFFSET = {"text": 0.0, "audio": 0.25, "video": 0.5}


def code(video: str, k: int) -> float:
    return 10.0 * sorted(SCORES).index(video) + k


def intervals(video: str, count: int) -> np.ndarray:
    starts = np.arange(count, dtype=np.float64) * 5
    if video == "8d-gEyoeBzc":
        starts = starts[::-1].copy()
    return np.stack([starts, starts + 4], axis=1)


def write_labels(path: Path, scores=SCORES, dataset="CMU-MOSI", name="Opinion Segment Labels") -> Path:
    data = {v: (np.array(s, dtype=np.float32).reshape(-1, 1), intervals(v, len(s))) for v, s in scores.items()}
    return write_csd(path, name, data, {"dataset name": dataset, "dimension names": ["sentiment score"]})


def write_release(folder: Path) -> Path:
    """<folder>/CMU_MOSI_Opinion_Labels.csd and <folder>/bc-lstm/..., as published; returns folder."""
    folder = Path(folder)
    write_labels(folder / "CMU_MOSI_Opinion_Labels.csd")
    ids = sorted(f"{video}_{k}" for video, scores in SCORES.items() for k in range(1, len(scores) + 1))
    rows = []
    for uid in ids:
        video, k = uid.rsplit("_", 1)
        score = SCORES[video][int(k) - 1]
        rows.append([uid, f"WORDS OF {uid.upper()}", str(sorted(SCORES).index(video) + 1), str(int(score >= 0))])
    release = folder / "bc-lstm"
    write_csv(release / "transcripts.csv", rows)
    for part in ("train", "test"):
        index = [i for i, uid in enumerate(ids) if (uid.rsplit("_", 1)[0] in RELEASE_TRAIN) == (part == "train")]
        index = index[::-1] if part == "train" else index  # the files' order is their own, not the transcripts'
        codes = [code(*split_id(ids[i])) for i in index]
        labels = [rows[i][3] for i in index]
        write_csv(
            release / f"text_{part}.csv",
            [[str(i), *[repr(c)] * DIMS["text"]] for i, c in zip(index, codes, strict=True)],
        )
        for prefix, dim in DIMS.items():
            values = [[repr(c + OFFSET[prefix])] * dim + [label] for c, label in zip(codes, labels, strict=True)]
            write_csv(release / prefix / f"{prefix}_{part}0.csv", values)
    return folder


def split_id(uid: str) -> tuple[str, int]:
    video, k = uid.rsplit("_", 1)
    return video, int(k)


def write_csv(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(rows)
