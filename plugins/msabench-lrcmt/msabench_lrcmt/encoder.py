"""`lora-bert`: BERT over `text_bert` token ids with LoRA adapters (peft) in its frozen layers, or frozen without
adapters, or fully fine-tuned; returns every token's last hidden state."""

from __future__ import annotations

import functools

import torch

from msabench import CatalogError, Encoder
from msabench.pretrained import load_pretrained, random_bert

ADAPTERS = ("lora", "frozen", "full")
# LoRA's adapted matrices: every attention projection of every layer (query, key, value, output). r = 8 on them
# (589,824 parameters at BERT-base size) with the cross-modal module and head: 0.768 % (bench/README.md).
TARGETS = ("query", "key", "value", "attention.output.dense")


class LoraBert(Encoder):
    """BERT's token states ``[B, L, hidden]`` over `text_bert` ids, adapted by LoRA (``adapter="lora"``: peft's
    `LoraConfig` / `get_peft_model` on transformers' `BertModel`, rank ``rank``, scale ``alpha / rank``, dropout
    ``lora_dropout`` on the adapters' input, in ``targets`` of every layer; BERT's own weights frozen),
    ``"frozen"`` (no adapter, nothing trained, BERT in eval mode) or ``"full"`` (every weight fine-tuned).

    Weights: ``pretrained`` (a transformers name or folder), else the tokenizer that made the dataset's ids
    (bert-base-uncased for MOSI/MOSEI, bert-base-chinese for CH-SIMS), looked up as `bert-text` does; data with a
    synthetic vocabulary, or ``random_init=True``, get a random BERT sized by the other arguments. BERT's pooler
    is not built: nothing reads it."""

    name = "lora-bert"
    consumes = "text_bert"
    returns = "sequence"
    tiny = {"random_init": True, "hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32, "rank": 2}

    def __init__(
        self,
        spec,
        adapter: str = "lora",
        rank: int = 8,
        alpha: float = 16.0,
        lora_dropout: float = 0.1,
        targets: list[str] | tuple[str, ...] = TARGETS,
        pretrained: str | None = None,
        random_init: bool = False,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 2,
        intermediate_size: int = 128,
        dropout: float = 0.1,
    ):
        super().__init__(spec)
        if adapter not in ADAPTERS:
            raise CatalogError(f"encoder 'lora-bert': adapter {adapter!r} is not one of {', '.join(ADAPTERS)}.")
        bert, self.pretrained = bert_model(
            spec, pretrained, random_init, hidden_size, layers, heads, intermediate_size, dropout
        )
        self.adapter = adapter
        if adapter == "lora":
            from peft import LoraConfig, get_peft_model

            if not (isinstance(rank, int) and rank >= 1):
                raise CatalogError(f"encoder 'lora-bert': rank must be a whole number >= 1; got {rank!r}.")
            config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=lora_dropout, target_modules=list(targets))
            bert = get_peft_model(bert, config)  # freezes BERT's own weights
        elif adapter == "frozen":
            bert.requires_grad_(False)
        self.bert = bert
        self.out_dim = bert.config.hidden_size

    def train(self, mode: bool = True):
        super().train(mode)
        if self.adapter == "frozen":
            self.bert.eval()  # a frozen BERT keeps its dropout off
        return self

    def forward(self, x, lengths):
        ids, mask, segments = x[:, 0].long(), x[:, 1].long(), x[:, 2].long()
        with torch.set_grad_enabled(self.adapter != "frozen" and torch.is_grad_enabled()):
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=segments).last_hidden_state


def bert_model(spec, pretrained, random_init, hidden_size, layers, heads, intermediate_size, dropout):
    """(BertModel without pooler, the checkpoint's name or None) for a `text_bert` input."""
    from transformers import BertModel

    checkpoint = pretrained or spec.tokenizer
    if random_init or checkpoint is None:
        dims = {"hidden_size": hidden_size, "layers": layers, "heads": heads, "intermediate_size": intermediate_size}
        return random_bert(spec, encoder="lora-bert", dropout=dropout, pooler=False, **dims), None
    loader = functools.partial(BertModel.from_pretrained, add_pooling_layer=False)
    hint = "; or --set text.random_init=true to train from random weights"
    bert = load_pretrained(loader, checkpoint, encoder="lora-bert", section="text", what="BERT model", hint=hint)
    if spec.vocab_size and bert.config.vocab_size < spec.vocab_size:
        raise CatalogError(
            f"encoder 'lora-bert': checkpoint {checkpoint!r} has a vocabulary of {bert.config.vocab_size}, but "
            f"{spec.name} holds ids of tokenizer {spec.tokenizer!r} ({spec.vocab_size} ids); use its checkpoint."
        )
    return bert, checkpoint
