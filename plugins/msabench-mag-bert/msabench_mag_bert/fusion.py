"""The multimodal adaptation gate (MAG) and BERT's encoder after it."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from msabench import CatalogError, Fusion
from msabench.layers import align_to_text, length_mask
from msabench.pretrained import load_pretrained

log = logging.getLogger("msabench")


class AdaptationGate(nn.Module):
    """MAG: shifts each word's embedding e by a gated non-verbal displacement.

    ``H = relu(W_hv [v; e]) * W_v v + relu(W_ha [a; e]) * W_a a``, ``alpha = min(beta * ||e|| / ||H||, 1)`` (an
    all-zero H counts as norm 1), output ``dropout(LayerNorm(e + alpha * H))`` per word.
    """

    def __init__(self, text: int, audio: int, vision: int, beta: float = 1.0, dropout: float = 0.5):
        super().__init__()
        self.gate_vision, self.gate_audio = nn.Linear(vision + text, text), nn.Linear(audio + text, text)
        self.vision, self.audio = nn.Linear(vision, text), nn.Linear(audio, text)
        self.beta = beta
        self.norm = nn.LayerNorm(text)
        self.dropout = nn.Dropout(dropout)

    def displacement(self, e: torch.Tensor, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        weight_v = F.relu(self.gate_vision(torch.cat([v, e], dim=-1)))
        weight_a = F.relu(self.gate_audio(torch.cat([a, e], dim=-1)))
        return weight_v * self.vision(v) + weight_a * self.audio(a)

    def scale(self, e: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """alpha = min(beta * ||e|| / ||H||, 1), per word: ``[B, L, 1]``."""
        h_norm = h.norm(dim=-1)
        h_norm = torch.where(h_norm == 0, torch.ones_like(h_norm), h_norm)
        return torch.clamp(self.beta * e.norm(dim=-1) / (h_norm + 1e-6), max=1.0).unsqueeze(-1)

    def forward(self, e: torch.Tensor, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h = self.displacement(e, a, v)
        return self.dropout(self.norm(e + self.scale(e, h) * h))


class Embedded(nn.Module):
    """Stands in for BertModel's embedding module: returns the (already embedded and shifted) ``inputs_embeds``."""

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, **_):
        return inputs_embeds


class MAGBert(Fusion):
    """MAG-BERT (Rahman et al., ACL 2020): the gate shifts the output of BERT's embedding module (word + position
    + segment embeddings after LayerNorm: the `bert-embeddings` text encoder) by the word-aligned audio and vision
    frames, then transformers' ``BertModel`` runs its encoder and pooler on the result (its embedding module is
    replaced by a pass-through, so the shifted embeddings go in as ``inputs_embeds``, with the attention mask of
    the text lengths); the pooled output goes through dropout (BERT's hidden dropout) and a linear layer.

    ``pretrained`` names the BERT checkpoint of the encoder layers (the same as the text encoder's, e.g.
    ``bert-base-uncased``); without it (synthetic data) they start from random weights built from the size
    arguments, the width being the text encoder's. On data that is not word-aligned (CH-SIMS), audio and vision
    are average-pooled to the text's length, as MMSA's AlignSubNet does.
    """

    name = "mag-bert"
    accepts = "sequence"
    modalities = ("text", "audio", "vision")
    tiny = {"pretrained": None, "layers": 1, "heads": 2, "intermediate_size": 16}

    def __init__(
        self,
        in_dims,
        task,
        pretrained: str | None = None,
        beta: float = 1.0,
        dropout: float = 0.5,
        layers: int = 2,
        heads: int = 2,
        intermediate_size: int = 128,
        hidden_dropout: float = 0.1,
    ):
        super().__init__(in_dims, task)
        from transformers import BertConfig, BertModel

        width = in_dims["text"]
        if pretrained:
            bert = load_pretrained(
                BertModel.from_pretrained, pretrained, encoder=self.name, section="fusion", what="BERT model"
            )
            if bert.config.hidden_size != width:
                raise CatalogError(
                    f"fusion 'mag-bert': {pretrained!r} is {bert.config.hidden_size} wide but the text embeddings are "
                    f"{width}; give the text encoder and the fusion the same checkpoint (text.pretrained, "
                    "fusion.pretrained)."
                )
        else:
            if width % heads:
                raise CatalogError(f"fusion 'mag-bert': the text width {width} is not divisible by {heads} heads.")
            config = BertConfig(
                vocab_size=2,  # unused: the embeddings come from the text encoder
                hidden_size=width,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=intermediate_size,
                hidden_dropout_prob=hidden_dropout,
                attention_probs_dropout_prob=hidden_dropout,
            )
            bert = BertModel(config)
            if width >= 256:
                log.warning("fusion 'mag-bert': no fusion.pretrained given; BERT's %d layers start random", layers)
        bert.embeddings = Embedded()
        self.bert = bert
        self.gate = AdaptationGate(width, in_dims["audio"], in_dims["vision"], beta, dropout)
        self.dropout = nn.Dropout(bert.config.hidden_dropout_prob)
        self.out = nn.Linear(width, task.out_dim)

    def forward(self, features, lengths):
        features = align_to_text(features, "mag-bert")
        text = features["text"]
        shifted = self.gate(text, features["audio"], features["vision"])
        real = lengths["text"] if lengths["text"] is not None else torch.full((len(text),), text.shape[1])
        mask = length_mask(real.to(text.device), text.shape[1]).long()
        pooled = self.bert(inputs_embeds=shifted, attention_mask=mask).pooler_output
        return {"prediction": self.out(self.dropout(pooled))}
