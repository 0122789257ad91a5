"""BERT over MMSA's `text_bert` token ids ([B, 3, L]: ids, attention mask, segment ids).

Which weights it loads:

1. ``pretrained`` (a transformers name such as ``bert-base-chinese``, or a local folder), else
   the tokenizer that produced the dataset's ids (``bert-base-uncased`` for MOSI/MOSEI,
   ``bert-base-chinese`` for CH-SIMS);
2. a name is looked up as a folder under ``$MSABENCH_MODELS`` first
   (``$MSABENCH_MODELS/bert-base-chinese``), then through ``transformers.AutoModel.from_pretrained``
   (the Hugging Face cache, or the hub when online);
3. data with a synthetic vocabulary (no tokenizer), or ``random_init=True``, get a BERT with random
   weights built from the size arguments (tests, benchmarks, CPU smoke runs);
4. ``init_from`` then replaces them with an earlier msabench run's weights for this encoder (its checkpoint).

A checkpoint that cannot be found fails at once with a message that names it and says how to
point at a local copy (see `msabench.pretrained.load_pretrained`).
"""

from __future__ import annotations

import torch

from msabench import CatalogError, Encoder
from msabench.pretrained import load_pretrained, pool, random_bert, start_from_checkpoint, weights_sha256


class BertText(Encoder):
    """BERT (or any transformers encoder) over `text_bert` token ids; its [CLS] vector, fine-tuned by default.

    Each batch runs only up to its longest text (the ids are padded on the right, as MMSA's are): the same
    vectors as over the whole padding, up to rounding, at a fraction of the cost for short texts.
    ``train_layers=N`` fine-tunes only the top N Transformer layers (embeddings and pooler stay frozen);
    ``finetune=False`` freezes it all (kept in eval mode)."""

    name = "bert-text"
    consumes = "text_bert"
    returns = "vector"
    tiny = {"random_init": True, "hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32}

    def __init__(
        self,
        spec,
        pretrained: str | None = None,
        finetune: bool = True,
        pooling: str = "cls",
        random_init: bool = False,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 2,
        intermediate_size: int = 128,
        dropout: float = 0.1,
        init_from: str | None = None,
        train_layers: int | None = None,
    ):
        super().__init__(spec)
        if pooling not in ("cls", "pooler", "mean"):
            raise CatalogError(f"encoder 'bert-text': pooling {pooling!r} is not one of cls, pooler, mean.")
        checkpoint = pretrained or spec.tokenizer
        if random_init or checkpoint is None:
            self.bert = random_bert(
                spec, encoder=self.name, hidden_size=hidden_size, layers=layers, heads=heads,
                intermediate_size=intermediate_size, dropout=dropout,
            )  # fmt: skip
            self.pretrained = None
        else:
            from transformers import AutoModel

            hint = "; or --set text.random_init=true to train from random weights"
            self.bert = load_pretrained(
                AutoModel.from_pretrained, checkpoint, encoder=self.name, section="text", hint=hint
            )
            self.pretrained, self.weights_sha256 = checkpoint, weights_sha256(checkpoint)
            vocab = getattr(self.bert.config, "vocab_size", None)
            if spec.vocab_size and vocab and vocab < spec.vocab_size:
                raise CatalogError(
                    f"encoder 'bert-text': checkpoint {checkpoint!r} has a vocabulary of {vocab}, "
                    f"but {spec.name} holds ids of tokenizer {spec.tokenizer!r} ({spec.vocab_size} ids). "
                    "Use the checkpoint that matches that tokenizer."
                )
        self.pooling = pooling
        self.finetune = finetune
        self.out_dim = self.bert.config.hidden_size
        if init_from:  # an earlier run's fine-tuned weights (a multi-stage method's text stage)
            self.started_from = start_from_checkpoint(self, init_from, "text")
        if not finetune:
            self.bert.requires_grad_(False)
        elif train_layers is not None:  # fine-tune only the top layers (ConFEDE trains BERT's last one)
            total = self.bert.config.num_hidden_layers
            if isinstance(train_layers, bool) or not isinstance(train_layers, int) or not 0 <= train_layers <= total:
                raise CatalogError(
                    f"encoder 'bert-text': train_layers must be a whole number from 0 to {total}; got {train_layers!r}."
                )
            top = tuple(f"encoder.layer.{i}." for i in range(total - train_layers, total))
            for name, parameter in self.bert.named_parameters():
                parameter.requires_grad_(name.startswith(top))

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.finetune:
            self.bert.eval()  # a frozen BERT keeps its dropout off
        return self

    def forward(self, x, lengths):
        longest = max(int(x[:, 1].sum(1).max()), 1) if len(x) else 1  # each batch padded to its longest text only
        ids, mask, segments = x[:, 0, :longest].long(), x[:, 1, :longest].long(), x[:, 2, :longest].long()
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            output = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=segments)
        if self.pooling == "pooler" and output.pooler_output is None:
            raise CatalogError(
                f"encoder 'bert-text': {self.pretrained or 'this model'} has no pooler; use pooling='cls'."
            )
        return pool(output, mask, self.pooling)


class BertEmbeddings(BertText):
    """The output of BERT's embedding module over `text_bert` ids: word + position + segment embeddings after
    LayerNorm and dropout, ``[B, L, hidden]``; only that module is kept.

    For methods that change the embeddings before BERT's layers run (MAG-BERT); the weights load as
    `bert-text`'s do (``pretrained``, else the dataset's tokenizer; random on synthetic vocabularies)."""

    name = "bert-embeddings"
    returns = "sequence"

    def __init__(
        self,
        spec,
        pretrained: str | None = None,
        finetune: bool = True,
        random_init: bool = False,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 2,
        intermediate_size: int = 128,
        dropout: float = 0.1,
    ):
        super().__init__(
            spec,
            pretrained=pretrained,
            finetune=finetune,
            random_init=random_init,
            hidden_size=hidden_size,
            layers=layers,
            heads=heads,
            intermediate_size=intermediate_size,
            dropout=dropout,
        )
        self.embeddings = self.bert.embeddings
        del self.bert

    def train(self, mode: bool = True):
        Encoder.train(self, mode)
        if not self.finetune:
            self.embeddings.eval()
        return self

    def forward(self, x, lengths):
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            return self.embeddings(input_ids=x[:, 0].long(), token_type_ids=x[:, 2].long())
