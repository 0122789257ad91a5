"""The corruption sets on fixed seeds. `multibench`: which words change (never a four-letter one), which samples
lose a modality at p, which image transforms fire and what each does. `msabench`: levels 0 and 1 exactly,
determinism and the statistics of its noise."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from msabench.corruptions import (
    NEIGHBOURS,
    QWERTY,
    SETS,
    VISUAL,
    WHITE_BALANCE,
    corrupt_frames,
    corrupt_image,
    corrupt_text,
    corrupt_token_ids,
    generator,
    last_alnum,
    misspell,
    multibench_image,
    multibench_misspell,
    multibench_text,
    multibench_timeseries,
    multibench_visual,
    word_spans,
)
from msabench.errors import DataError

TEXT = "The movie was wonderful, truly AMAZING acting! but a bit long at times..."


def multibench(seed, curve, level):
    return generator("multibench", seed, curve, level)


def ours(seed, curve, level):
    return generator("msabench", seed, curve, level)


def test_generators_of_the_two_sets():
    assert isinstance(multibench(0, "text", 1), np.random.RandomState)  # numpy's legacy generator: MultiBench's
    assert isinstance(ours(0, "text", 1), np.random.Generator)
    assert multibench(1, "text", 2).random_sample() == multibench(1, "text", 2).random_sample()
    assert multibench(1, "text", 2).random_sample() != multibench(1, "audio", 2).random_sample()
    with pytest.raises(ValueError, match="unknown corruption set 'nope'; known: multibench, msabench"):
        generator("nope", 0, "text", 1)
    assert set(SETS["multibench"]) == set(SETS["msabench"]) == {"words", "token-ids", "frames", "images"}


# -- multibench: text -------------------------------------------------------------------------------------------


def test_words_as_multibench_cuts_them():
    text = "Don't-stop 123abc <br />http://x.y/z\nhttps://a.b c\nnext~word[s] café12345"
    # ' - digits ~ [ ] <br /> split words; the line starting with https:// is one token (MultiBench's "L"); the
    # http:// after <br /> does not start a line, so it is cut at : / . like any text
    assert [text[a:b] for a, b in word_spans(text)] == ["Don", "t", "stop", "abc", "http", "x", "y", "z", "next"] + [
        "word",
        "s",
        "café",
    ]
    assert word_spans("  https://x.org/long-address\nwonderful") == [(29, 38)]  # leading blanks stripped first
    assert [last_alnum(w) for w in ("hello", "hell", "abc&", "wor&d", "...", "")] == [4, 3, 2, 4, -1, -1]


def test_which_words_change():
    assert multibench_text(TEXT, 0.0, multibench(0, "text", 0)) is TEXT
    # p = 1: every word whose last letter has index > 3 is misspelt; "The", "was", "but", "a", "bit", "long", "at"
    # are not; case, punctuation and spacing stay
    assert multibench_text(TEXT, 1.0, multibench(0, "text", 9)) == (
        "The move was wonderrful, trully AMZING atincg! but a bit long at tmies..."
    )
    assert multibench_text(TEXT, 1.0, multibench(1, "text", 9)) == (
        "The mvie was werodufnl, teuly AMAZIING actiing! but a bit long at yimes..."
    )
    assert multibench_text(TEXT, 0.5, multibench(0, "text", 5)) == (
        "The movie was wonderful, trluy AMAZING acting! but a bit long at times..."
    )
    assert multibench_text(TEXT, 0.5, multibench(1, "text", 5)) == (
        "The movie was wrduonefl, truly AMAZING acting! but a bit long at times..."
    )


def test_four_letter_words_never_change_nor_draw():
    text = "word long time good fine Wow! word, ... 1234 abc& it's"
    rng = multibench(0, "text", 9)
    state = rng.get_state()
    assert multibench_text(text, 1.0, rng) == text
    after = rng.get_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]  # no number drawn: as MultiBench's `and`
    changed = multibench_text(" ".join(["words"] * 200), 1.0, multibench(3, "text", 9)).split()
    assert sum(w != "words" for w in changed) >= 190  # five letters: eligible (a shuffle may give the word back)


def test_text_probability():
    out = multibench_text(" ".join(["sentiment"] * 4000), 0.3, multibench(0, "text", 3)).split()
    assert 0.27 < np.mean([w != "sentiment" for w in out]) < 0.33  # u <= 0.3 per word; one std is 0.007


class Legacy:
    """A stand-in for numpy's RandomState returning scripted integers and permutations (reversal for shuffle)."""

    def __init__(self, *integers, permutation=None):
        self.values, self.order = list(integers), permutation

    def randint(self, *args):
        return self.values.pop(0)

    def permutation(self, n):
        return np.asarray(self.order)

    def shuffle(self, items):
        items.reverse()


def test_each_multibench_misspelling():
    assert multibench_misspell("wonder", Legacy(0, 1)) == "wodner"  # swap at randint(last - 2) + 1 = 2
    assert multibench_misspell("wonder", Legacy(1)) == "wednor"  # letters 1..last-1 shuffled (here reversed)
    assert multibench_misspell("wonder,", Legacy(1)) == "wednor,"  # last = the last alphanumeric character
    # typo: the first position of the permutation whose letter is on MultiBench's table, then randint over it
    assert multibench_misspell("wonder", Legacy(2, 2, permutation=[3, 0])) == "wonfer"  # d -> QWERTY["d"][2]
    assert multibench_misspell("Wonder", Legacy(2, 0, permutation=[0])) == "Qonder"  # case kept
    assert multibench_misspell("wonder", Legacy(3, permutation=[2, 0])) == "wonnder"  # sticky: permutation[0]
    assert multibench_misspell("wonder", Legacy(4, 0)) == "wnder"  # omit randint(last - 1) + 1 = 1
    assert QWERTY["d"] == "sefxc" and QWERTY["q"] == "w" and len(QWERTY) == 26
    assert sum(set(QWERTY[k]) == set(NEIGHBOURS[k]) for k in QWERTY) == 7  # msabench's computed table differs


# -- multibench: feature sequences ----------------------------------------------------------------------------


def test_which_samples_lose_the_modality():
    x = torch.arange(20 * 3 * 2, dtype=torch.float32).reshape(20, 3, 2) + 1
    (out,) = multibench_timeseries([x], 0.5, multibench(1111, "audio", 5))
    dropped = (out.reshape(20, -1) == 0).all(1)
    assert torch.nonzero(dropped).flatten().tolist() == [4, 5, 9, 12, 13, 15, 18, 19]  # the whole modality
    assert not (out[~dropped] == 0).any()
    (nearly_all,) = multibench_timeseries([torch.ones(400, 2, 2)], 0.9, multibench(0, "audio", 9))
    assert 0.86 < (nearly_all.reshape(400, -1) == 0).all(1).float().mean() < 0.94  # ~90 % lose it at p = 0.9
    assert torch.equal(multibench_timeseries([x], 0.0, multibench(0, "audio", 0))[0], x)


def test_timeseries_draws_as_add_timeseries_noise():
    """One Gaussian value per sample (array by array), then one uniform per sample (array by array), as the
    loops of MultiBench's white_noise and structured_drop draw them."""
    arrays = [
        torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(0)),
        torch.randn(5, 2, generator=torch.Generator().manual_seed(1)),
    ]
    p, rng = 0.4, np.random.RandomState(7)
    offsets = [[rng.normal(0, p) for _ in a] for a in arrays]
    drops = [[rng.random_sample() < p for _ in a] for a in arrays]
    out = multibench_timeseries(arrays, p, np.random.RandomState(7))
    for array, result, offset, drop in zip(arrays, out, offsets, drops, strict=True):
        for i in range(len(array)):
            expected = (
                torch.zeros_like(array[i]) if drop[i] else array[i] + torch.tensor(offset[i], dtype=torch.float32)
            )
            assert torch.equal(result[i], expected)  # padding included: every value of the sample
    assert sum(sum(d) for d in drops) == 4


# -- multibench: images -------------------------------------------------------------------------------------------


def image(width=12, height=8, seed=0):
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encoded(picture):
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_which_image_transforms_fire():
    rng = multibench(1111, "image", 5)
    fired = [multibench_visual(image(seed=i), 0.5, rng)[1] for i in range(4)]
    assert fired == [
        ["inversion", "salt-and-pepper"],
        ["grayscale", "low-contrast", "rotation"],
        ["grayscale", "low-contrast", "salt-and-pepper", "gaussian", "rotation", "flip"],
        ["grayscale", "inversion", "gaussian"],
    ]
    rng = multibench(1111, "image", 1)
    fired = [multibench_visual(image(seed=i), 0.1, rng)[1] for i in range(10)]
    assert fired == [["gaussian"], [], [], ["rotation"], ["inversion"], ["low-contrast", "gaussian", "crop"], []] + [
        ["rotation"],
        [],
        [],
    ]
    out, fired = multibench_visual(image(), 1.0, multibench(1111, "image", 9))
    # p = 1: all fire but white balance and tint, which need RGB and come after grayscale
    assert fired == [name for name in VISUAL if name not in ("white-balance", "tint")]
    assert out.mode == "RGB" and out.size == (8, 12)  # the crop's resize((height, width)): Pillow reads (w, h)


class Draws:
    """A stand-in for numpy's RandomState: the uniforms of the transforms in `fire` 0 (the others 1), `offset` for
    the rotation's and the crop's own uniforms, fixed choices, noise and salt-and-pepper points."""

    def __init__(self, fire, p, choice=0, normal=0.0, offset=0.5, points=()):
        self.uniforms = []
        for name in VISUAL:
            self.uniforms.append(0.0 if name in fire else 1.0)
            if name in fire and name in ("rotation", "crop"):
                self.uniforms += [offset] * (1 if name == "rotation" else 2)
        self.p, self.choice_, self.normal_, self.points = p, choice, normal, list(points)

    def random_sample(self):
        return self.uniforms.pop(0)

    def choice(self, n):
        return self.choice_

    def normal(self, loc, scale, size):
        assert scale == self.p
        return np.full(size, self.normal_)

    def randint(self, low, high, size):
        return np.asarray(self.points.pop(0))

    def run(self, picture):
        out, fired = multibench_visual(picture, self.p, self)
        return np.asarray(out).astype(int), fired


def flat(color, width=6, height=4):
    return Image.fromarray(np.full((height, width, 3), color, np.uint8), "RGB")


def test_each_image_transform():
    color = (200, 100, 50)
    assert Draws([], 0.5).run(flat(color))[1] == []
    gray, fired = Draws(["grayscale"], 0.5).run(flat(color))
    assert fired == ["grayscale"] and (gray == 124).all()  # L = (299 R + 587 G + 114 B) / 1000, as RGB
    assert (Draws(["inversion"], 0.5).run(flat(color))[0] == (55, 155, 205)).all()
    low = Draws(["low-contrast"], 0.5).run(flat(color))[0]
    assert (np.abs(low - 124) < np.abs(np.array(color) - 124)).all()  # halfway to the image's mean gray
    balanced = Draws(["white-balance"], 0.5, choice=0).run(flat(color))[0]
    assert WHITE_BALANCE[0] == (255, 56, 0) and (balanced == (200, 22, 0)).all()  # channels × (255, 56, 0) / 255
    tinted = Draws(["tint"], 0.5, choice=2).run(flat(color))[0]  # "green": Pillow's (0, 128, 0), blended 30 %
    assert (np.abs(tinted - (140, 108, 35)) <= 1).all()
    assert Draws(["grayscale", "white-balance", "tint"], 0.5).run(flat(color))[1] == ["grayscale"]  # RGB only
    flipped = Draws(["flip"], 0.5).run(image())[0]
    assert (flipped == np.asarray(image())[:, ::-1]).all()


def test_salt_pepper_and_gaussian_noise_as_multibench_codes_them():
    salted, _ = Draws(["salt-and-pepper"], 0.25, points=[[0, 1, 2], [0, 1, 2], [2, 0, 0], [4, 3, 3]]).run(
        flat((255, 255, 255))
    )
    # ceil(0.25 * 4 * 6 / 2) = 3 points each (rows, then columns): "salt" is 1 (of 255), "pepper" 0
    assert salted[0, 0, 0] == 1 and salted[1, 1, 0] == 1 and salted[2, 2, 0] == 1
    assert salted[2, 4, 0] == 0 and salted[0, 3, 0] == 0 and (salted[3] == 255).all()
    with pytest.raises(DataError, match="2 x 2 pixels or more"):
        multibench_visual(flat((9, 9, 9), width=1), 1.0, multibench(0, "image", 9))
    # Gaussian noise (sigma p on 0-255) on the gray image, cast to uint8 as numpy does on x86-64: truncated toward
    # zero, then modulo 256, so black with noise -1.5 turns white and 255 with +1.2 turns black
    assert (Draws(["gaussian"], 0.5, normal=-1.5).run(flat((0, 0, 0)))[0] == 255).all()
    assert (Draws(["gaussian"], 0.5, normal=-0.7).run(flat((0, 0, 0)))[0] == 0).all()
    assert (Draws(["gaussian"], 0.5, normal=1.2).run(flat((255, 255, 255)))[0] == 0).all()
    assert (Draws(["gaussian"], 0.5, normal=0.9).run(flat((100, 100, 100)))[0] == 100).all()


def test_rotation_and_crop():
    square = flat((255, 255, 255), 10, 10)
    turned = Draws(["rotation"], 0.5, offset=1.0).run(square)[0]  # 1.0 * 40 - 20 = +20 degrees, black corners
    assert turned[0, 0].sum() == 0 and turned[5, 5].sum() == 3 * 255
    assert Draws(["rotation"], 0.5, offset=0.5).run(square)[0].min() == 255  # 0 degrees
    cropped, fired = Draws(["crop"], 0.5, offset=0.0).run(image(width=10, height=5))
    assert fired == ["crop"] and cropped.shape == (10, 5, 3)  # 4/5 of each side, resized to (width 5, height 10)


def test_multibench_image_bytes():
    data = encoded(image())
    assert multibench_image(data, 0.0, multibench(0, "image", 0)) is data
    out = multibench_image(data, 0.5, multibench(1111, "image", 5))
    expected, _ = multibench_visual(image(), 0.5, multibench(1111, "image", 5))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), np.asarray(expected))  # PNG: lossless


# -- msabench's own set -----------------------------------------------------------------------------------------


class Scripted:
    """A stand-in for numpy's Generator that returns the integers and permutations a test scripts."""

    def __init__(self, *integers, permutation=None):
        self.values, self.order = list(integers), permutation

    def integers(self, *args):
        return self.values.pop(0)

    def permutation(self, n):
        return np.asarray(self.order)


def test_each_misspelling():
    assert misspell("wonder", Scripted(0, 2)) == "wodner"  # swap letters 2 and 3
    assert misspell("wonder", Scripted(1, permutation=[3, 2, 1, 0])) == "wednor"  # inner letters reversed
    typo = misspell("wonder", Scripted(2, 0, 1))  # first letter, second neighbour of w
    assert typo == NEIGHBOURS["w"][1] + "onder"
    assert misspell("Wonder", Scripted(2, 0, 0)) == NEIGHBOURS["w"][0].upper() + "onder"  # case kept
    assert misspell("wonder", Scripted(3, 2)) == "wonnder"  # sticky n
    assert misspell("wonder", Scripted(4, 1)) == "wnder"  # o omitted
    assert misspell("word", Scripted(0, 1)) == "wrod"  # the only inner swap of a 4-letter word


def test_keyboard_neighbours():
    assert set(NEIGHBOURS["g"]) == set("fhtybv") and set(NEIGHBOURS["q"]) == set("wa")
    assert all(key in NEIGHBOURS[other] for key, near in NEIGHBOURS.items() for other in near)  # symmetric


def test_text_levels_zero_and_one():
    assert corrupt_text(TEXT, 0.0, ours(1, "text", 0)) is TEXT
    out = corrupt_text(TEXT, 1.0, ours(1, "text", 9))
    before, after = TEXT.split(" "), out.split(" ")
    assert len(before) == len(after)
    for word, new in zip(before, after, strict=True):
        letters = word.strip(",.!")
        if len(letters) <= 3:
            assert new == word  # "The", "was", "but", "a", "bit", "at" untouched
        else:
            assert new != word and abs(len(new) - len(word)) <= 1  # one misspelling ("long" too: msabench's set)
            assert new[len(new.rstrip(",.!")) :] == word[len(word.rstrip(",.!")) :]  # punctuation kept aside
    assert corrupt_text(TEXT, 1.0, ours(1, "text", 9)) == out  # seeded
    assert corrupt_text(TEXT, 1.0, ours(2, "text", 9)) != out


def token_ids():
    ids = torch.tensor([[1, 7, 8, 9, 2, 0, 0], [1, 5, 2, 0, 0, 0, 0]])
    mask = (ids > 0).long()
    return torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)


@pytest.mark.parametrize("name", list(SETS))
def test_token_ids_levels(name):
    ids = token_ids()
    assert torch.equal(corrupt_token_ids(ids, 0.0, generator(name, 0, "t", 0), unk=3), ids)
    out = corrupt_token_ids(ids, 1.0, generator(name, 0, "t", 9), unk=3)
    assert out[0, 0].tolist() == [1, 3, 3, 3, 2, 0, 0] and out[1, 0].tolist() == [1, 3, 2, 0, 0, 0, 0]
    assert torch.equal(out[:, 1:], ids[:, 1:])  # mask and segments unchanged
    assert torch.equal(ids, token_ids())  # the input is not modified


def frames():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) + 1
    lengths = torch.tensor([5, 2])
    x[1, 2:] = 7.0  # padding that is not zero: msabench's set must not touch it
    return x, lengths


def test_frames_levels_zero_and_one():
    x, lengths = frames()
    assert torch.equal(corrupt_frames(x, lengths, 0.0, ours(0, "a", 0)), x)
    out = corrupt_frames(x, lengths, 1.0, ours(0, "a", 9))
    assert torch.equal(out[0], torch.zeros(5, 3)) and torch.equal(out[1, :2], torch.zeros(2, 3))
    assert torch.equal(out[1, 2:], torch.full((3, 3), 7.0))  # padding untouched
    vectors = torch.ones(4, 6)  # [N, D] features: one step each
    assert torch.equal(corrupt_frames(vectors, None, 1.0, ours(0, "a", 9)), torch.zeros(4, 6))


def test_frames_noise_and_drop_statistics():
    x = torch.zeros(200, 50, 8)
    out = corrupt_frames(x, None, 0.4, ours(3, "audio", 4))
    dropped = (out == 0).all(-1)
    assert 0.37 < dropped.float().mean() < 0.43  # whole steps zeroed with probability 0.4
    assert float(out[~dropped].std()) == pytest.approx(0.4, rel=0.03)  # sigma = p
    assert torch.equal(out, corrupt_frames(x, None, 0.4, ours(3, "audio", 4)))
    assert not torch.equal(out, corrupt_frames(x, None, 0.4, ours(3, "audio", 5)))


def jpeg(width=12, height=8, value=200):
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8), "RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_image_levels():
    data = jpeg()
    assert corrupt_image(data, 0.0, ours(0, "image", 0)) is data
    black = pixels(corrupt_image(data, 1.0, ours(0, "image", 9)))
    assert black.shape == (8, 12, 3) and not black.any()
    half = pixels(corrupt_image(data, 0.5, ours(0, "image", 5)))
    assert (half.max(-1) == 0).sum() >= round(8 * math.sqrt(0.5)) * round(12 * math.sqrt(0.5))  # the occlusion
    visible = half[half.max(-1) > 0].astype(float)
    assert 50 < visible.std() < 160  # noise of sigma 0.5 (127 levels), clipped
    assert corrupt_image(data, 0.5, ours(0, "image", 5)) == corrupt_image(data, 0.5, ours(0, "image", 5))
