"""The corruptions of `msabench robustness`, in two named sets (`SETS`), each a function of an input, a level p
and a seeded random state (same inputs and state, same output).

``multibench`` (the default) is MultiBench's (Liang et al., NeurIPS 2021; pliang279/MultiBench:
``robustness/text_robust.py``, ``robustness/timeseries_robust.py``, ``robustness/visual_robust.py``, and
``datasets/affect/get_data.py`` for how the affect loaders call them, in their current versions: an early
``timeseries_robust.py`` dropped runs of 3 time steps instead), written here from those definitions:

- **raw text** (`multibench_text`, MultiBench's ``add_text_noise``): the text is cut into words as MultiBench's
  ``_normalizeText`` cuts it (whitespace; ``/ ' - . ? ! ( ) " , : ;`` as tokens of their own; ``~ * + ^ ` _ # [ ]
  |``, ``<br />`` and digit runs as separators; a line starting with http:// or https:// as one token). A word is
  eligible when the index of its last letter or digit is > 3 (``_last_char(word) > 3``: five characters or more,
  so four-letter words never change); each eligible word draws u and, when u <= p, one of five misspellings
  chosen uniformly (`multibench_misspell`): swap of two adjacent letters, shuffle of the letters between the first
  and the last, a typo from MultiBench's QWERTY table (`QWERTY`), a repeated ("sticky") letter, an omitted inner
  letter.
- **feature sequences** (`multibench_timeseries`, ``add_timeseries_noise(arrays, p, rand_drop=False)`` as the
  affect loaders call it on ``[N, L, D]`` arrays): the loops of ``white_noise`` and ``structured_drop`` run over
  the samples of each array, so each sample gets **one** Gaussian value (sigma p) added to all of its values
  (padding included), then each sample's **whole modality** is zeroed with probability p (u < p). Lengths are
  kept (MultiBench zeroes the values; it does not shorten the sequence).
- **images** (`multibench_visual`, ``add_visual_noise``): ten transforms in this order, each applied when its
  draw u <= p (`VISUAL`): grayscale, contrast × 0.5, inversion, white balance (one of 19 colour temperatures,
  RGB images only), a 30 % tint of red, blue or green (Pillow's colour names, RGB only), salt-and-pepper
  (grayscale, then ceil(p·H·W/2) pixels set to 1 and as many to 0), Gaussian noise (grayscale plus sigma-p noise
  on the 0–255 scale), rotation by U(-20, 20) degrees (bilinear), horizontal flip, and a crop of 4/5 of each side
  at a random offset resized to (H, W) as Pillow reads that pair, i.e. width H and height W. The result is RGB.

The random numbers are drawn from a `numpy.random.RandomState` (numpy's legacy generator, the one behind
MultiBench's ``np.random.*`` calls) with exactly MultiBench's calls in MultiBench's order, so, started from the
same state, the same texts, arrays and images come out; the transforms are Pillow's own, as in MultiBench.
What is not MultiBench's, and why:

- text keeps its case, digits, URLs and spacing (MultiBench returns its normalised text: lower-cased, digits as
  "N", URLs as "L", punctuation spaced), because level 0 must be the run's clean input; a typo keeps the letter's
  case. The words and the draws are the same.
- MultiBench casts the noisy gray image to uint8 with numpy's float-to-uint8 cast, whose result out of [0, 256)
  the C standard leaves undefined; this module truncates toward zero and wraps modulo 256, which is what that cast
  gives on x86-64 (checked with numpy 2.4), so a pixel of 0 with noise below -1 becomes 255.
- MultiBench's affect loaders drop a test sample whose text features are all zero (``drop_entry``) after
  corrupting, so its all-modalities curve loses the samples whose text was zeroed; here every level scores the
  same samples.
- MultiBench leaves its global random state unseeded between levels; here each curve point has its own seed.

``msabench`` is msabench's own finer-grained set (not MultiBench's): words of more than 3 letters misspelt by the
same five operations with a computed QWERTY neighbourhood (`NEIGHBOURS`), Gaussian noise on every real time step
element by element and each real time step zeroed with probability p (padding untouched), and images with
Gaussian noise (sigma p on [0, 1]) and a black rectangle over a fraction p of the area.

Both sets corrupt token ids (``text_bert``) the same way, a declared proxy for misspelling (MultiBench has no
token-id inputs): each token between [CLS] and [SEP] becomes [UNK] with probability p.
"""

from __future__ import annotations

import io
import math
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from msabench.errors import DataError

SETS = {
    "multibench": {
        "words": "MultiBench's add_text_noise: each word whose last letter or digit has index > 3 (five or more "
        "characters) misspelt with probability p (swap, inner shuffle, QWERTY typo, sticky letter or omission)",
        "token-ids": "proxy, not MultiBench's (it has no token ids): each token between [CLS] and [SEP] replaced by "
        "[UNK] with probability p",
        "frames": "MultiBench's add_timeseries_noise as its affect loaders call it: one Gaussian value (sigma = p) "
        "added to each sample, then each sample's whole modality zeroed with probability p",
        "images": "MultiBench's add_visual_noise: grayscale, low contrast, inversion, white balance, colour tint, "
        "salt-and-pepper, Gaussian noise (sigma = p on 0-255), rotation, flip and crop, each with probability p",
    },
    "msabench": {
        "words": "msabench's: each word of more than 3 letters misspelt with probability p (swap, inner shuffle, "
        "QWERTY typo, sticky letter or omission), then preprocessed again",
        "token-ids": "proxy: each token between [CLS] and [SEP] replaced by [UNK] with probability p",
        "frames": "msabench's: Gaussian noise (sigma = p) on every value of every real time step, then each real "
        "time step zeroed with probability p",
        "images": "msabench's: Gaussian pixel noise (sigma = p on [0, 1]) and a black rectangle over a fraction p of "
        "the area",
    },
}


def generator(corruptions: str, seed: int, curve: str, level: int) -> Any:
    """The random state of one curve point, from the run's seed, the curve's name and the level's index: numpy's
    legacy `RandomState` for ``multibench`` (MultiBench's draws), a `Generator` for ``msabench``."""
    key = [seed, zlib.crc32(curve.encode()), level]
    if corruptions == "multibench":
        return np.random.RandomState(key)
    if corruptions == "msabench":
        return np.random.default_rng(key)
    raise ValueError(f"unknown corruption set {corruptions!r}; known: {', '.join(SETS)}")


# -- MultiBench: text -------------------------------------------------------------------------------------------

# MultiBench's QWERTY neighbours (robustness/text_robust.py, qwerty_typo), in its order: the draw indexes them.
QWERTY = {
    "q": "w",
    "w": "qes",
    "e": "wrd",
    "r": "etf",
    "t": "rgy",
    "y": "tuh",
    "u": "yij",
    "i": "uok",
    "o": "ipl",
    "p": "o",
    "a": "qsz",
    "s": "awdxz",
    "d": "sefxc",
    "f": "drgcv",
    "g": "fthvb",
    "h": "gyjbn",
    "j": "huknm",
    "k": "jilm",
    "l": "ko",
    "z": "asx",
    "x": "zsdc",
    "c": "xdfv",
    "v": "cfgb",
    "b": "vghn",
    "n": "bhmj",
    "m": "njk",
}
_BREAK = re.compile(r"<br />")
_URL = re.compile(r"^https?://.*[\r\n]*", re.MULTILINE)
_WORD = re.compile(r"[^\s~*+^`_#\[\]|0-9/'\-.?!()\",:;]+")


def last_alnum(word: str) -> int:
    """The index of the last letter or digit of `word`, -1 when it has none (MultiBench's ``_last_char``)."""
    for index in range(len(word) - 1, -1, -1):
        if word[index].isalpha() or word[index].isdigit():
            return index
    return -1


def word_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every word of `text` as MultiBench's ``_normalizeText`` cuts it, in order, leaving out
    the tokens that can never be misspelt (punctuation, "N" for digits, "L" for a URL line)."""
    work = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)  # lower-cased, same offsets
    work = _BREAK.sub(" " * 6, work)
    lead = len(work) - len(work.lstrip())  # MultiBench strips the text before looking for URL lines
    for match in _URL.finditer(work[lead:]):
        start, end = lead + match.start(), lead + match.end()
        work = work[:start] + " " * (end - start) + work[end:]
    return [match.span() for match in _WORD.finditer(work)]


def multibench_misspell(word: str, rng: np.random.RandomState) -> str:
    """One of MultiBench's five misspellings of an eligible word (``last_alnum(word) > 3``), chosen uniformly, with
    its draws: swap_letter, random_mid, qwerty_typo, sticky_keys, omission. Letters keep their case."""
    last = last_alnum(word)
    operation = rng.randint(5)
    if operation == 0:  # two adjacent letters swapped, at 1..last-2
        i = rng.randint(last - 2) + 1
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if operation == 1:  # the letters strictly between the first and the last alphanumeric one shuffled
        inner = list(word[1:last])
        rng.shuffle(inner)
        return word[0] + "".join(inner) + word[last:]
    if operation == 2:  # the first position, in a random order of 0..last, whose letter is on the table
        for i in rng.permutation(last + 1):
            letter = word[i].lower()
            if letter in QWERTY:
                key = QWERTY[letter][rng.randint(len(QWERTY[letter]))]
                return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
        return word
    if operation == 3:  # one letter of 0..last doubled
        i = int(rng.permutation(last + 1)[0])
        return word[:i] + word[i] + word[i:]
    i = rng.randint(last - 1) + 1  # one letter of 1..last-1 omitted
    return word[:i] + word[i + 1 :]


def multibench_text(text: str, p: float, rng: np.random.RandomState) -> str:
    """`text` with each eligible word misspelt with probability p (MultiBench's ``add_text_noise`` on one text);
    the rest of the text is left as it is. p = 0 returns `text` itself."""
    if p <= 0 or text is None:
        return text
    pieces, done = [], 0
    for start, end in word_spans(text):
        word = text[start:end]
        if last_alnum(word) > 3 and rng.random_sample() <= p:
            pieces += [text[done:start], multibench_misspell(word, rng)]
            done = end
    return "".join(pieces) + text[done:]


# -- MultiBench: feature sequences --------------------------------------------------------------------------------


def multibench_timeseries(arrays: Sequence[torch.Tensor], p: float, rng: np.random.RandomState) -> list[torch.Tensor]:
    """MultiBench's ``add_timeseries_noise(arrays, p, rand_drop=False)`` on ``[N, ...]`` arrays, as its affect
    loaders call it: for each array in turn, one Gaussian value (sigma p) per sample added to all of the sample's
    values; then, for each array in turn, each sample zeroed with probability p. Returns new tensors (dtype kept,
    the noise added in that dtype as numpy adds a float to a float32 array); p = 0 returns copies."""
    if p <= 0:
        return [x.clone() for x in arrays]
    offsets = [rng.normal(0.0, p, size=len(x)) for x in arrays]
    dropped = [rng.random_sample(len(x)) < p for x in arrays]
    out = []
    for x, offset, drop in zip(arrays, offsets, dropped, strict=True):
        shape = (len(x),) + (1,) * (x.dim() - 1)
        noisy = x + torch.from_numpy(offset).to(x.dtype).reshape(shape)
        out.append(torch.where(torch.from_numpy(drop).reshape(shape), torch.zeros_like(noisy), noisy))
    return out


# -- MultiBench: images -------------------------------------------------------------------------------------------

VISUAL = (
    "grayscale",
    "low-contrast",
    "inversion",
    "white-balance",
    "tint",
    "salt-and-pepper",
    "gaussian",
    "rotation",
    "flip",
    "crop",
)
# MultiBench's colour temperatures (robustness/visual_robust.py, WB): RGB of 1000 K, 1500 K, ..., 10000 K.
WHITE_BALANCE = (
    (255, 56, 0),
    (255, 109, 0),
    (255, 137, 18),
    (255, 161, 72),
    (255, 180, 107),
    (255, 196, 137),
    (255, 209, 163),
    (255, 219, 186),
    (255, 228, 206),
    (255, 236, 224),
    (255, 243, 239),
    (255, 249, 253),
    (245, 243, 255),
    (235, 238, 255),
    (227, 233, 255),
    (220, 229, 255),
    (214, 225, 255),
    (208, 222, 255),
    (204, 219, 255),
)
TINTS = ("red", "blue", "green")  # Pillow's colour names, as MultiBench passes them: green is (0, 128, 0)
RGB_ONLY = ("white-balance", "tint")  # transforms that do nothing on an image made gray (they still draw u)


def multibench_visual(image: Any, p: float, rng: np.random.RandomState) -> tuple[Any, list[str]]:
    """MultiBench's ``add_visual_noise`` on one RGB Pillow image: (the corrupted image as RGB, the names of the
    transforms that fired, in `VISUAL` order). Each transform draws u and fires when u <= p; white balance and
    tint draw u but do nothing on an image already made gray."""
    from PIL import Image, ImageEnhance, ImageOps

    transforms: dict[str, Callable[[Any], Any]] = {
        "grayscale": ImageOps.grayscale,
        "low-contrast": lambda image: ImageEnhance.Contrast(image).enhance(0.5),
        "inversion": ImageOps.invert,
        "white-balance": lambda image: _white_balance(image, rng),
        "tint": lambda image: Image.blend(image, Image.new("RGB", image.size, TINTS[rng.choice(len(TINTS))]), 0.3),
        "salt-and-pepper": lambda image: _salt_and_pepper(image, p, rng),
        "gaussian": lambda image: _gaussian(image, p, rng),
        "rotation": lambda image: image.rotate(rng.random_sample() * 40 - 20, Image.Resampling.BILINEAR),
        "flip": lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "crop": lambda image: _crop(image, rng),
    }
    fired = []
    for name in VISUAL:
        if rng.random_sample() <= p and (name not in RGB_ONLY or image.mode == "RGB"):
            fired.append(name)
            image = transforms[name](image)
    return image.convert("RGB"), fired


def _white_balance(image: Any, rng: np.random.RandomState) -> Any:
    r, g, b = WHITE_BALANCE[rng.choice(len(WHITE_BALANCE))]
    return image.convert("RGB", (r / 255.0, 0.0, 0.0, 0.0, 0.0, g / 255.0, 0.0, 0.0, 0.0, 0.0, b / 255.0, 0.0))


def _salt_and_pepper(image: Any, p: float, rng: np.random.RandomState) -> Any:
    from PIL import Image, ImageOps

    gray = np.array(ImageOps.grayscale(image))
    height, width = gray.shape
    if min(height, width) < 2:
        raise DataError(f"MultiBench's salt-and-pepper needs images of 2 x 2 pixels or more, not {width} x {height}.")
    count = int(math.ceil(p * gray.size * 0.5))
    for value in (1, 0):  # "salt" is 1 of 255 in MultiBench's code; rows and columns up to size - 2
        rows, columns = rng.randint(0, height - 1, count), rng.randint(0, width - 1, count)
        gray[rows, columns] = value
    return Image.fromarray(gray)


def _gaussian(image: Any, p: float, rng: np.random.RandomState) -> Any:
    from PIL import Image, ImageOps

    width, height = image.size
    noisy = np.array(ImageOps.grayscale(image)) + rng.normal(0.0, p, (height, width))
    return Image.fromarray((np.trunc(noisy).astype(np.int64) % 256).astype(np.uint8))


def _crop(image: Any, rng: np.random.RandomState) -> Any:
    from PIL import Image

    width, height = image.size
    top, left = rng.random_sample() * (height / 5), rng.random_sample() * (width / 5)
    box = (left, top, width - width / 5 + left, height - height / 5 + top)
    return image.crop(box).resize((height, width), Image.Resampling.BICUBIC)


def multibench_image(data: bytes, p: float, rng: np.random.RandomState) -> bytes:
    """An image file's bytes through `multibench_visual`, as PNG. p = 0 returns `data` itself."""
    if p <= 0 or data is None:
        return data
    return _png(np.asarray(multibench_visual(_decode(data), p, rng)[0]))


# -- msabench's own set -------------------------------------------------------------------------------------------


def _keyboard() -> dict[str, str]:
    """QWERTY neighbours: same-row keys beside a key, and keys of the rows above and below within one key width
    (rows staggered by a quarter and three quarters of a key)."""
    rows = [("qwertyuiop", 0.0), ("asdfghjkl", 0.25), ("zxcvbnm", 0.75)]
    where = {key: (r, c + offset) for r, (keys, offset) in enumerate(rows) for c, key in enumerate(keys)}
    return {
        key: "".join(
            other
            for other, (row2, x2) in where.items()
            if other != key and ((row2 == row and abs(x2 - x) == 1) or (abs(row2 - row) == 1 and abs(x2 - x) < 1))
        )
        for key, (row, x) in where.items()
    }


NEIGHBOURS = _keyboard()
TOKEN = re.compile(r"\S+")


def misspell(word: str, rng: np.random.Generator) -> str:
    """One of five misspellings of a word of 4+ characters, chosen uniformly (msabench's set)."""
    n = len(word)
    operation = int(rng.integers(5))
    if operation == 0:  # swap two adjacent letters, first and last kept
        i = int(rng.integers(1, n - 2))
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if operation == 1:  # shuffle the inner letters
        inner = list(word[1:-1])
        return word[0] + "".join(inner[i] for i in rng.permutation(len(inner))) + word[-1]
    if operation == 2:  # a neighbouring key instead of one letter
        typeable = [i for i, c in enumerate(word) if c.lower() in NEIGHBOURS]
        if not typeable:
            return word
        i = typeable[int(rng.integers(len(typeable)))]
        near = NEIGHBOURS[word[i].lower()]
        key = near[int(rng.integers(len(near)))]
        return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
    if operation == 3:  # a sticky key: one letter twice
        i = int(rng.integers(n))
        return word[: i + 1] + word[i] + word[i + 1 :]
    i = int(rng.integers(1, n - 1))  # omit an inner letter
    return word[:i] + word[i + 1 :]


def corrupt_text(text: str, p: float, rng: np.random.Generator) -> str:
    """`text` with each whitespace-separated word whose letters (punctuation at its ends aside) number more than 3
    misspelt with probability p (msabench's set). p = 0 returns `text` itself; p = 1 misspells every such word."""
    if p <= 0:
        return text

    def one(match: re.Match) -> str:
        token = match.group()
        start, end = 0, len(token)
        while start < end and not token[start].isalnum():
            start += 1
        while end > start and not token[end - 1].isalnum():
            end -= 1
        word = token[start:end]
        if len(word) > 3 and rng.random() < p:
            word = misspell(word, rng)
        return token[:start] + word + token[end:]

    return TOKEN.sub(one, text)


def corrupt_token_ids(ids: torch.Tensor, p: float, rng: Any, unk: int) -> torch.Tensor:
    """[N, 3, L] ids/mask/segments (right-padded, [CLS] first, [SEP] last): each token strictly between them becomes
    `unk` with probability p (both sets: a proxy for misspelling)."""
    if p <= 0:
        return ids.clone()
    ids = ids.clone()
    positions = torch.arange(ids.shape[2])[None, :]
    lengths = ids[:, 1].sum(1, keepdim=True)
    inner = (positions >= 1) & (positions < lengths - 1) & (ids[:, 1] > 0)
    draws = rng.random_sample(tuple(inner.shape)) if isinstance(rng, np.random.RandomState) else rng.random(inner.shape)
    hit = torch.from_numpy(draws < p) & inner
    ids[:, 0][hit] = unk
    return ids


def corrupt_frames(x: torch.Tensor, lengths: torch.Tensor | None, p: float, rng: np.random.Generator) -> torch.Tensor:
    """[N, L, D] features (or [N, D], one step): Gaussian noise with sigma = p on the real steps (the first
    `lengths[i]`; all when None), then each real step zeroed with probability p. Padding is left as it is
    (msabench's set)."""
    if p <= 0:
        return x.clone()
    steps = x if x.dim() == 3 else x[:, None]
    real = torch.ones(steps.shape[:2], dtype=torch.bool)
    if lengths is not None:
        real = torch.arange(steps.shape[1])[None, :] < lengths.reshape(-1, 1)
    noise = torch.from_numpy(rng.standard_normal(tuple(steps.shape)).astype(np.float32)) * p
    out = steps + noise.to(steps.dtype) * real[..., None]
    drop = torch.from_numpy(rng.random(tuple(real.shape)) < p) & real
    out[drop] = 0
    return out if x.dim() == 3 else out[:, 0]


def corrupt_image(data: bytes, p: float, rng: np.random.Generator) -> bytes:
    """An image file's bytes with Gaussian pixel noise (sigma = p on [0, 1]) and a black rectangle of the image's
    aspect covering a fraction p of its area at a random place, as PNG (msabench's set). p = 0 returns `data`
    itself; p = 1 gives an all-black image."""
    if p <= 0:
        return data
    pixels = np.asarray(_decode(data), dtype=np.float32) / 255.0
    height, width = pixels.shape[:2]
    pixels = pixels + rng.normal(0.0, p, pixels.shape).astype(np.float32)
    box_h, box_w = round(height * math.sqrt(p)), round(width * math.sqrt(p))
    top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
    pixels[top : top + box_h, left : left + box_w] = 0.0
    return _png(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))


def black_image(data: bytes) -> bytes:
    """A black PNG of the same size as the image in `data`."""
    width, height = _decode(data).size
    return _png(np.zeros((height, width, 3), dtype=np.uint8))


def _decode(data: bytes) -> Any:
    from PIL import Image, ImageFile

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except OSError as error:  # a truncated file decodes as far as it goes, as the datasets read it
        if "truncated" not in str(error).lower():
            raise DataError(f"cannot decode an image to corrupt it: {error}") from None
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    return image.convert("RGB")


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()
