"""Token ids for transcripts: transformers' AutoTokenizer, found through msabench's `load_pretrained` (a folder, a
name under $MSABENCH_MODELS, or a hub name)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from msabench import DataError, Split
from msabench.pretrained import load_pretrained


def tokenize(dataset: str, name: str, splits: dict[str, Split]) -> tuple[int, dict[str, Any]]:
    """Add ``text_bert`` ([N, 3, L]: ids, attention mask, segment ids; L the longest transcript of all splits, cut
    at the tokenizer's maximum) to every split, from its ``raw_text``, and set ``text_lengths`` to each transcript's
    token count. Returns the vocabulary size and what identifies the tokenizer (its vocabulary's SHA-256)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = load_pretrained(
            AutoTokenizer.from_pretrained, name, encoder=dataset, section="data", what="tokenizer"
        )
    except DataError as error:
        message = (
            str(error)
            .replace(f"encoder {dataset!r}: ", "")
            .replace("--set data.pretrained=", "--data-option tokenizer=")
        )
        raise DataError(f"{dataset}: --data-option tokenizer={name}: {message}") from None
    texts = [text for split in splits.values() for text in split.raw["raw_text"]]
    full = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    encoded = tokenizer(texts, padding="longest", truncation=True, return_tensors="np")
    ids = encoded["input_ids"].astype(np.int64)
    mask = encoded["attention_mask"].astype(np.int64)
    segments = encoded.get("token_type_ids", np.zeros_like(ids)).astype(np.int64)
    tokens = torch.from_numpy(np.stack([ids, mask, segments], axis=1))
    start = 0
    for split in splits.values():
        part = tokens[start : start + len(split)]
        split.tensors["text_bert"] = part
        split.tensors["text_lengths"] = part[:, 1].sum(1)
        start += len(split)
    vocabulary = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()
    info = {
        "name": name,
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "vocab_sha256": hashlib.sha256(vocabulary).hexdigest(),
        "tokens": int(ids.shape[1]),
        "truncated": sum(length > ids.shape[1] for length in full),
    }
    return len(tokenizer), info
