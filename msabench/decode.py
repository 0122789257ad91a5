"""Decoding what datasets store as bytes: texts in whatever encoding they were saved in, and images
in whatever format (and state) they are.

**Texts** (`decode_text`): UTF-8 (a BOM is dropped); else Shift-JIS when it reads as Japanese (kana, no
half-width katakana); else GB18030 when the result does not look like a Windows-1252 text read as
Chinese (Lab5's files are GBK-encoded: in lab5-dev, 378 of 1,600 texts); else a Cyrillic code page
(KOI8-R or Windows-1251, whichever gives mostly lower-case words) when Windows-1252 would turn most
letters into accented capitals; else Windows-1252 (what "ISO-8859-1" text usually is), where the five
bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) are read as Latin-1 does (control
characters U+0081...) and counted as replacements, so that one stray byte does not cost a text its
accented letters. Every byte string decodes to something (no UnicodeDecodeError), and how it was read
is returned, so a reader can count and report what was guessed. (charset-normalizer was tried and
read 47 of lab5-dev's 378 GBK tweets as Shift-JIS, Windows-1252 or EUC-KR: short English tweets with
a few GBK quotes defeat it.)

**Images** (`open_image`) go through Pillow, which reads the format from the bytes, not the name;
CMYK, grayscale, palette and alpha images are converted to RGB (transparency onto white); a
truncated file is decoded as far as it goes and marked so. A file that cannot be decoded at all
is a DataError.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from typing import Any

import numpy as np

from msabench.errors import DataError

# -- text ---------------------------------------------------------------------------------------

_CJK = r"\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_BESIDE_LATIN = re.compile(f"(?<=[A-Za-z])[{_CJK}]|[{_CJK}](?=[A-Za-z])")


CP1252_UNDEFINED = "\x81\x8d\x8f\x90\x9d"  # bytes Windows-1252 leaves undefined; read as Latin-1 (same code points)
_UNDEFINED_AS_LATIN1 = {0xDC00 + ord(char): ord(char) for char in CP1252_UNDEFINED}


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, how): how is "utf-8", "utf-16", "shift_jis", "gb18030", "koi8-r", "cp1251", "cp1252" or
    "cp1252+latin-1".

    GB18030 decodes most Windows-1252 texts too, as Chinese characters glued to Latin letters
    ("naïve" -> "na飗e"); such a reading is refused when most of its CJK characters touch a Latin
    letter, which Chinese or Japanese text rarely does. Windows-1252 reads every byte but five
    (`CP1252_UNDEFINED`); those are read as Latin-1 and the text is marked "cp1252+latin-1"
    (`undefined_bytes` counts them).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-16"), "utf-16"
    with contextlib.suppress(UnicodeDecodeError):
        return data.decode("utf-8-sig"), "utf-8"
    with contextlib.suppress(UnicodeDecodeError):
        text = data.decode("shift_jis")
        kana = len(_KANA.findall(text))
        if kana and 5 * kana >= len(_NON_ASCII.findall(text)) and not _HALFWIDTH_KANA.search(text):
            return text, "shift_jis"
    with contextlib.suppress(UnicodeDecodeError):
        text = data.decode("gb18030")
        cjk = len(_CJK_CHAR.findall(text))
        if 2 * len(_CJK_BESIDE_LATIN.findall(text)) <= cjk:
            return text, "gb18030"
    if cyrillic := _cyrillic(data):
        return cyrillic
    with contextlib.suppress(UnicodeDecodeError):
        return data.decode("cp1252"), "cp1252"
    text = data.decode("cp1252", errors="surrogateescape")  # the undefined bytes become U+DC81, U+DC8D...
    return text.translate(_UNDEFINED_AS_LATIN1), "cp1252+latin-1"


_KANA = re.compile("[\u3040-\u30ff]")
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_HIGH_LETTER = re.compile("[\u00c0-\u00ff]")
_CYRILLIC_LOWER = re.compile("[\u0430-\u044f\u0451]")
_CYRILLIC_UPPER = re.compile("[\u0410-\u042f\u0401]")


def _cyrillic(data: bytes) -> tuple[str, str] | None:
    """A KOI8-R or Windows-1251 reading, when Windows-1252 would make most of the letters accented Latin ones (the
    mark of a Cyrillic code page): the one with more lower-case than upper-case letters, as running text has."""
    latin = data.decode("latin-1")
    letters = sum(char.isalpha() for char in latin)
    if not letters or 2 * len(_HIGH_LETTER.findall(latin)) < letters:
        return None
    readings = []
    for codec in ("koi8-r", "cp1251"):  # Windows-1251 leaves 0x98 undefined
        with contextlib.suppress(UnicodeDecodeError):
            readings.append((data.decode(codec), codec))
    scored = [(len(_CYRILLIC_LOWER.findall(t)) - len(_CYRILLIC_UPPER.findall(t)), t, c) for t, c in readings]
    score, text, codec = max(scored, key=lambda item: item[0])
    return (text, codec) if score > 0 else None


def undefined_bytes(text: str) -> int:
    """How many characters of a "cp1252+latin-1" text came from bytes that Windows-1252 leaves undefined."""
    return sum(text.count(char) for char in CP1252_UNDEFINED)


# -- images -------------------------------------------------------------------------------------

_TRUNCATED = threading.Lock()


def open_image(data: bytes, *, draft: tuple[int, int] | None = None) -> tuple[Any, dict[str, Any]]:
    """(RGB PIL image, notes) from an image file's bytes; raises DataError if it cannot be decoded at all.

    notes: ``format`` (what the bytes are), ``mode`` (before conversion), ``truncated`` (decoded
    only as far as the file goes). `draft` lets JPEG decode at a reduced scale (for checking files).
    """
    from PIL import Image, ImageFile

    if not data:
        raise DataError("empty file")
    try:
        image = Image.open(io.BytesIO(data))
        if draft is not None:
            image.draft("RGB", draft)
        notes = {"format": image.format, "mode": image.mode, "truncated": False}
        try:
            image.load()
        except OSError as error:
            if "truncated" not in str(error).lower():
                raise
            with _TRUNCATED:  # Pillow's switch is global: hold it only for this one decode
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    image = Image.open(io.BytesIO(data))
                    if draft is not None:
                        image.draft("RGB", draft)
                    image.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = False
            notes["truncated"] = True
        return to_rgb(image), notes
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise DataError(f"{type(error).__name__}: {error}") from None


def to_rgb(image: Any) -> Any:
    """An RGB copy of a PIL image; transparent pixels become white."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array / top * 255).clip(0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


# -- labels and splits --------------------------------------------------------------------------
