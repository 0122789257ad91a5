"""CLIP's image and text towers as encoders: `clip-image` and `clip-text`.

Two backends behind each:

- ``backend="transformers"`` (default): ``CLIPModel.from_pretrained(pretrained)``, where
  ``pretrained`` is a hub name (``openai/clip-vit-base-patch32``: ViT-B/32 with OpenAI's weights,
  224 px images, 77 text tokens) or a local folder written by ``save_pretrained``. Only the
  tower used and its projection are kept.
- ``backend="open_clip"``: ``open_clip.create_model_and_transforms(model_name, pretrained=...)``
  with a pretrained tag (``openai``) or a checkpoint path. open_clip is an optional extra
  (``pip install 'msabench[open-clip]'``), imported only when asked for; it needs torchvision,
  which must match the installed torch (see docs/howto/offline-weights.md).

The output is the projected embedding (``projection_dim``, 512 for ViT-B/32), L2-normalised with
``normalize=True``. ``config`` builds the model from a CLIPConfig dict with random weights instead
(tests, smoke runs; ``{}`` is ViT-B/32's architecture); the text tower then gets a
character-level tokenizer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from msabench import CatalogError, DataError
from msabench.pretrained import (
    OPENAI_MEAN,
    OPENAI_STD,
    ImageProcessing,
    PretrainedEncoder,
    char_tokenizer,
    check_positive,
    check_tokenizer,
    load_pretrained,
    preprocessor_config,
    right_padded,
    tokenize,
    tokenizer_digest,
    trim,
)

BACKENDS = ("transformers", "open_clip")
DEFAULT = "openai/clip-vit-base-patch32"
TINY_CONFIG = {
    "text_config": {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "vocab_size": 100,
        "max_position_embeddings": 24,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "pad_token_id": 0,
    },
    "vision_config": {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "image_size": 16,
        "patch_size": 8,
    },
    "projection_dim": 8,
}


def check_backend(backend: str, encoder: str, section: str) -> None:
    if backend not in BACKENDS:
        raise CatalogError(
            f"encoder {encoder!r}: unknown backend {backend!r}; "
            f"set --set {section}.backend=transformers (or open_clip)."
        )


def clip_model(pretrained: str | None, config: dict[str, Any] | None, encoder: str, section: str) -> Any:
    """A transformers CLIPModel: from `config` with random weights, or loaded from `pretrained`."""
    from transformers import CLIPConfig, CLIPModel

    if config is not None:
        config = dict(config)
        text = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0, **config.pop("text_config", {})}
        return CLIPModel(CLIPConfig(text_config=text, vision_config=config.pop("vision_config", {}), **config))
    return load_pretrained(CLIPModel.from_pretrained, pretrained, encoder=encoder, section=section)


def open_clip_model(model_name: str, pretrained: str | None, encoder: str) -> Any:
    """(open_clip model, module) with a clear message when open_clip is missing or broken."""
    try:
        import open_clip
    except Exception as error:  # ImportError, or torchvision failing against this torch
        raise DataError(
            f"encoder {encoder!r}: backend 'open_clip' needs the open_clip package, which cannot be imported here "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "Install it with `pip install 'msabench[open-clip]'` "
            "next to a torchvision that matches your torch, or use the default backend 'transformers'."
        ) from None
    try:
        model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    except Exception as error:
        raise DataError(
            f"encoder {encoder!r}: open_clip cannot build {model_name!r} with pretrained={pretrained!r}: "
            f"{type(error).__name__}: {error}. "
            "Pass a pretrained tag open_clip knows (open_clip.list_pretrained()) or a local checkpoint file."
        ) from None
    return model, open_clip


class ClipTower(PretrainedEncoder):
    """What CLIP's two towers share: the backend (transformers or open_clip), L2-normalised outputs on request, and
    the settings their fingerprint records."""

    tiny = {"config": TINY_CONFIG, "init_from": None}

    def start(self, backend: str, normalize: bool) -> None:
        check_backend(backend, self.name, self.modality)
        self.backend, self.normalize = backend, normalize
        self.library = "transformers" if backend == "transformers" else "open_clip"

    def describe(self, model_name: str, **settings: Any) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model_name": model_name if self.backend == "open_clip" else None,
            **settings,
            "normalize": self.normalize,
        }

    def output(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(features, dim=-1) if self.normalize else features


class ClipImage(ClipTower):
    """CLIP's image tower and projection (ViT-B/32, OpenAI weights by default); reads image bytes."""

    name = "clip-image"
    consumes = "image"
    modality = "image"

    def __init__(
        self,
        spec,
        pretrained: str | None = DEFAULT,
        *,
        backend: str = "transformers",
        model_name: str = "ViT-B-32",
        freeze: bool = False,
        init_from: str | None = None,
        config: dict | None = None,
        image_size: int | None = None,
        normalize: bool = False,
    ):
        super().__init__(spec)
        self.start(backend, normalize)
        image_size = check_positive(image_size, encoder=self.name, section="image", key="image_size", optional=True)
        if backend == "transformers":
            model = clip_model(pretrained, config, self.name, "image")
            self.vision, self.projection = model.vision_model, model.visual_projection
            self.out_dim = model.config.projection_dim
            size = model.config.vision_config.image_size
            default = ImageProcessing(size, (size, size), mean=OPENAI_MEAN, std=OPENAI_STD)
            self.processing = ImageProcessing.from_config(
                preprocessor_config(pretrained) if config is None else {}, default=default, image_size=image_size
            )
        else:
            model, _ = open_clip_model(model_name, pretrained, self.name)
            self.visual = model.visual
            self.out_dim = int(model.visual.output_dim)
            size = model.visual.image_size
            size = size[0] if isinstance(size, (tuple, list)) else int(size)
            mean = tuple(getattr(model.visual, "image_mean", None) or OPENAI_MEAN)
            std = tuple(getattr(model.visual, "image_std", None) or OPENAI_STD)
            self.processing = ImageProcessing(size, (size, size), mean=mean, std=std)
        self.settings = self.describe(model_name, processing=self.processing.describe())
        self.finish(freeze=freeze, init_from=init_from, pretrained=None if config is not None else pretrained)

    def preprocess(self, values):
        return self.processing(values)

    def forward(self, x, lengths=None):
        pixels = self.processing.normalize(x)
        if self.backend == "transformers":
            features = self.projection(self.vision(pixel_values=pixels).pooler_output)
        else:
            features = self.visual(pixels)
        return self.output(features)


class ClipText(ClipTower):
    """CLIP's text tower and projection (77 tokens, OpenAI weights by default); reads raw text."""

    name = "clip-text"
    consumes = "raw_text"
    modality = "text"

    def __init__(
        self,
        spec,
        pretrained: str | None = DEFAULT,
        *,
        backend: str = "transformers",
        model_name: str = "ViT-B-32",
        freeze: bool = False,
        init_from: str | None = None,
        config: dict | None = None,
        max_length: int | None = None,
        normalize: bool = False,
    ):
        super().__init__(spec)
        self.start(backend, normalize)
        max_length = check_positive(max_length, encoder=self.name, section="text", key="max_length", optional=True)
        if backend == "transformers":
            model = clip_model(pretrained, config, self.name, "text")
            self.text, self.projection = model.text_model, model.text_projection
            self.out_dim = model.config.projection_dim
            self.max_length = max_length or model.config.text_config.max_position_embeddings
            if config is not None:
                self.tokenizer = char_tokenizer(self.max_length)
            else:
                from transformers import AutoTokenizer

                tokenizer = load_pretrained(
                    AutoTokenizer.from_pretrained, pretrained, encoder=self.name, section="text", what="tokenizer"
                )
                self.tokenizer = right_padded(check_tokenizer(tokenizer, encoder=self.name, source=pretrained))
            vocabulary = tokenizer_digest(self.tokenizer)
        else:
            model, open_clip = open_clip_model(model_name, pretrained, self.name)
            self.model = model
            if hasattr(model, "visual"):
                del model.visual  # the text tower is all this encoder needs
            self.out_dim = (
                int(model.text_projection.shape[1])
                if isinstance(model.text_projection, torch.Tensor)
                else int(model.text_projection.out_features)
            )
            self.tokenizer = open_clip.get_tokenizer(model_name)
            self.max_length = int(getattr(self.tokenizer, "context_length", 77))
            vocabulary = f"open_clip:{model_name}:{self.max_length}"
        self.settings = self.describe(
            model_name, max_length=self.max_length, tokenizer=vocabulary, padding_side="right"
        )
        self.finish(freeze=freeze, init_from=init_from, pretrained=None if config is not None else pretrained)

    def preprocess(self, values):
        if self.backend == "transformers":
            return tokenize(self.tokenizer, values, self.max_length)
        ids = self.tokenizer(list(values)).long() if values else torch.zeros(0, self.max_length, dtype=torch.long)
        return torch.stack([ids, (ids != 0).long()], dim=1)

    def forward(self, x, lengths=None):
        if self.backend == "transformers":
            ids, mask = trim(x)
            features = self.projection(self.text(input_ids=ids, attention_mask=mask).pooler_output)
        else:
            features = self.model.encode_text(x[:, 0])
        return self.output(features)
