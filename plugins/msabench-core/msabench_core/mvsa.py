"""MVSA-Single and MVSA-Multiple (Niu et al., MMM 2016) in their public raw layout, with the literature's
label cleaning and split sizes.

Cleaning (the rule behind the counts the literature reports, e.g. DECA+IDCA's Table 1): a (text, image) label
pair is kept when the labels are equal, becomes the polar label when one is neutral, and is dropped when one is
positive and the other negative. MVSA-Single has one pair per tweet: 4,869 tweets -> 4,511 (2,683 positive /
470 neutral / 1,358 negative). MVSA-Multiple has three annotators per tweet: first the majority (2 of 3) of the
three text labels and the majority of the three image labels, then the Single rule on that pair (no majority on
either side drops the tweet): 19,600 tweets -> 17,024 (11,318 / 4,408 / 1,298). Cleaning each annotator's pair
first and then voting is not the literature's rule (it keeps 17,510 = 11,903 / 4,107 / 1,500).

Splits: seeded and stratified, valid = test = floor(n_c / 10) per class and the rest for training, which gives
the published 3,611 / 450 / 450 (Single) and 13,624 / 1,700 / 1,700 (Multiple); or the ids of a split file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from msabench import DataError
from msabench.formats import ImageTextDataset, index_lines, safe_id

CLASSES = ImageTextDataset.task.classes


def clean_pair(text: str, image: str) -> str | None:
    """One annotator's (text, image) labels -> one label: equal -> it; neutral + polar -> the polar one;
    positive vs negative -> None (discarded)."""
    if text == image:
        return text
    if "neutral" in (text, image):
        return image if text == "neutral" else text
    return None


def majority(votes: Sequence[str | None]) -> str | None:
    """The label at least two of the votes agree on, else None (discarded)."""
    counts = Counter(vote for vote in votes if vote is not None)
    if not counts:
        return None
    label, count = counts.most_common(1)[0]
    return label if count >= 2 else None


class MVSA(ImageTextDataset):
    """Base for MVSA: labelResultAll.txt holds one (text,image) label pair per annotator and id."""

    annotators: ClassVar[int] = 1
    held_out = "floor"  # valid = test = floor(n_c / 10) per class: the literature's split sizes
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
        for number, line in index_lines(path):
            fields = line.split()
            if not fields or (number == 1 and not fields[0][:1].isdigit()):
                continue  # blank line or the "ID text,image ..." header
            pairs = fields[1:]
            if len(pairs) != self.annotators or not all(_pair(p) for p in pairs):
                raise DataError(
                    f"{path}:{number}: expected an id and {self.annotators} 'text,image' label pair(s) of "
                    f"{'/'.join(CLASSES)}; got {line!r}"
                )
            counts["rows"] += 1
            texts, images = zip(*(_pair(p) for p in pairs), strict=True)
            text, image = (texts[0], images[0]) if self.annotators == 1 else (majority(texts), majority(images))
            if text is None or image is None:
                counts["discarded_no_majority"] += 1
                continue
            label = clean_pair(text, image)
            if label is None:
                counts["discarded_conflict"] += 1
                continue
            ids.append(safe_id(fields[0], f"{path}:{number}"))
            labels.append(label)
        if len(set(ids)) != len(ids):
            duplicated = [sample for sample, n in Counter(ids).items() if n > 1]
            raise DataError(f"{path}: ids appear more than once: {', '.join(duplicated[:10])}")
        counts["kept"] = len(ids)
        return ids, labels, dict(counts), {relative: found["sha256"]}


class MVSASingle(MVSA):
    """MVSA-Single: 4,869 tweets, one annotator's text and image labels; 4,511 after cleaning, split 3,611/450/450."""

    name = "mvsa-single"
    folder = "MVSA_Single"
    files = {"labelResultAll.txt": None}
    annotators = 1
    published_size = 4511


class MVSAMultiple(MVSA):
    """MVSA-Multiple: 19,600 tweets, three annotators; 17,024 after cleaning, split 13,624/1,700/1,700."""

    name = "mvsa-multiple"
    folder = "MVSA"
    files = {"labelResultAll.txt": None}
    annotators = 3
    published_size = 17024


def _pair(text: str) -> tuple[str, str] | None:
    parts = text.lower().split(",")
    return (parts[0], parts[1]) if len(parts) == 2 and parts[0] in CLASSES and parts[1] in CLASSES else None
