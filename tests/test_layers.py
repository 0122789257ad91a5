"""The shared building blocks (msabench.layers): masks exclude padding, the fused attention equals attention
written out by hand, MulT's Transformer equals its equations, the packed LSTM ignores padding."""

import math

import pytest
import torch
import torch.nn.functional as F

from msabench import layers
from msabench.layers import (
    CrossmodalTransformer,
    Frames,
    PackedLSTM,
    _keep,
    align_to_text,
    attend,
    dropped_attention,
    last_step,
    length_mask,
    masked_mean,
    mult_causal_mask,
    pool_to,
    pooled_lengths,
    sinusoidal_positions,
)


@pytest.fixture(params=["one call per batch", "one call per sequence"])
def calls(request, monkeypatch):
    """Short sequences are attended in one padded call; longer ones one sequence at a time: test both."""
    if request.param == "one call per sequence":
        monkeypatch.setattr(layers, "SMALL", 0)
    return request.param


def padded(batch=3, steps=6, dim=4, lengths=(6, 3, 1), fill=1e3, seed=0):
    """A batch whose padding holds huge values: anything that reads it shows."""
    torch.manual_seed(seed)
    x = torch.randn(batch, steps, dim)
    lengths = torch.tensor(lengths)
    x[~length_mask(lengths, steps)] = fill
    return x, lengths


def test_length_mask_and_pooling_exclude_padding():
    x, lengths = padded()
    assert length_mask(lengths, 6).sum(1).tolist() == [6, 3, 1]
    expected = torch.stack([x[i, : lengths[i]].mean(0) for i in range(3)])
    assert torch.allclose(masked_mean(x, lengths), expected)
    assert torch.equal(last_step(x, lengths), torch.stack([x[0, 5], x[1, 2], x[2, 0]]))
    assert torch.equal(masked_mean(x, None), x.mean(1)) and torch.equal(last_step(x, None), x[:, -1])


def test_pool_to_is_mmsa_avg_pool():
    x = torch.arange(7.0).reshape(1, 7, 1)  # 7 frames to 3: windows of 3, padded with copies of the last frame
    assert pool_to(x, 3).flatten().tolist() == [1.0, 4.0, 6.0]  # (0+1+2)/3, (3+4+5)/3, (6+6+6)/3
    assert pool_to(torch.arange(6.0).reshape(1, 6, 1), 3).flatten().tolist() == [0.5, 2.5, 4.5]
    same = torch.randn(2, 3, 4)
    assert pool_to(same, 3) is same
    assert pooled_lengths(torch.tensor([7, 4, 1]), 7, 3).tolist() == [3, 2, 1]


def test_align_to_text_pools_audio_and_vision_to_the_text_steps():
    features = {"text": torch.randn(2, 5, 3), "audio": torch.randn(2, 10, 2), "vision": torch.randn(2, 5, 4)}
    aligned = align_to_text(features, "test")
    assert aligned["text"] is features["text"] and aligned["vision"] is features["vision"]
    assert torch.allclose(aligned["audio"], features["audio"].reshape(2, 5, 2, 2).mean(2))


def test_sinusoidal_positions_are_fairseqs():
    table = sinusoidal_positions(3, 6)  # positions 1, 2, 3; half = 3 frequencies 10000^(-i/2)
    frequencies = [10000 ** (-i / 2) for i in range(3)]
    for row, position in enumerate((1, 2, 3)):
        expected = [math.sin(position * f) for f in frequencies] + [math.cos(position * f) for f in frequencies]
        assert table[row].tolist() == pytest.approx(expected, abs=1e-6)
    assert sinusoidal_positions(2, 5)[:, -1].tolist() == [0.0, 0.0]  # odd width: a zero last column


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_lstm_ignores_padding(bidirectional):
    x, lengths = padded()
    lstm = PackedLSTM(4, 5, layers=2, bidirectional=bidirectional)
    outputs, final = lstm(x, lengths)
    directions = 2 if bidirectional else 1
    for i, n in enumerate(lengths.tolist()):
        alone, alone_final = lstm(x[i : i + 1, :n], None)  # the sample alone, no padding at all
        assert torch.allclose(outputs[i, :n], alone[0], atol=1e-6)
        assert torch.all(outputs[i, n:] == 0)
        assert torch.allclose(final[:, i], alone_final[:, 0], atol=1e-6)
    assert outputs.shape == (3, 6, 5 * directions) and lstm.out_dim == 5 * directions


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_lstm_last_is_the_final_state_with_the_same_gradients(bidirectional):
    x, lengths = padded()
    x.requires_grad_(True)
    lstm = PackedLSTM(4, 5, layers=2, bidirectional=bidirectional)
    _, final = lstm(x, lengths)
    packed = torch.cat(list(final[-(2 if bidirectional else 1) :]), dim=-1)
    last = lstm.last(x, lengths)  # one direction: the plain LSTM read at the last real frames, no packing
    assert last.shape == (3, 5 * (2 if bidirectional else 1))
    assert torch.allclose(last, packed, atol=1e-6)
    weights = torch.randn_like(last)
    expected = torch.autograd.grad((packed * weights).sum(), [x, *lstm.parameters()])
    found = torch.autograd.grad((last * weights).sum(), [x, *lstm.parameters()])
    for a, b in zip(expected, found, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.all(found[0][2, lengths[2] :] == 0)  # padding gets no gradient


def test_packed_lstm_does_not_pack_full_batches():
    x = torch.randn(2, 4, 3)
    lstm = PackedLSTM(3, 2)
    plain, (h, _) = lstm.lstm(x)
    outputs, final = lstm(x, torch.tensor([4, 4]))
    assert torch.equal(outputs, plain) and torch.equal(final, h)


def reference_attention(q, k, v, key_lengths):
    """softmax(q k^T / sqrt(E)) v with padded keys at -inf, written out: q [B, H, Lq, E]."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~length_mask(key_lengths, k.shape[2])[:, None, None, :], -math.inf)
    return scores.softmax(-1) @ v


def test_attend_equals_attention_by_hand_with_a_key_padding_mask(calls):
    torch.manual_seed(1)
    batch, heads, dim, lq, lk = 3, 2, 8, 5, 7
    q, k, v = torch.randn(batch, lq, dim), torch.randn(batch, lk, dim), torch.randn(batch, lk, dim)
    q_len, k_len = torch.tensor([5, 2, 4]), torch.tensor([7, 3, 1])
    queries, keys = Frames(q_len, lq, batch, q.device), Frames(k_len, lk, batch, q.device)
    out = queries.unpack(attend(queries.pack(q), keys.pack(k), keys.pack(v), queries, keys, heads))

    def split(x):
        return x.reshape(batch, -1, heads, dim // heads).transpose(1, 2)

    expected = reference_attention(split(q), split(k), split(v), k_len).transpose(1, 2).reshape(batch, lq, dim)
    real = length_mask(q_len, lq)
    assert torch.allclose(out[real], expected[real], atol=1e-6)
    assert torch.all(out[~real] == 0)


def test_attend_full_batches_use_one_call_and_agree():
    torch.manual_seed(2)
    q, k = torch.randn(2, 4, 6), torch.randn(2, 5, 6)
    full_q, full_k = Frames(None, 4, 2, q.device), Frames(None, 5, 2, q.device)
    assert full_q.full and Frames(torch.tensor([4, 4]), 4, 2, q.device).full
    batched = attend(full_q.pack(q), full_k.pack(k), full_k.pack(k), full_q, full_k, heads=3)
    expected = reference_attention(
        q.reshape(2, 4, 3, 2).transpose(1, 2),
        k.reshape(2, 5, 3, 2).transpose(1, 2),
        k.reshape(2, 5, 3, 2).transpose(1, 2),
        torch.tensor([5, 5]),
    )
    assert torch.allclose(batched, expected.transpose(1, 2).reshape(-1, 6), atol=1e-6)


def test_dropped_attention_values_and_gradients_equal_autograd_on_the_same_mask():
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, n, 4, dtype=torch.float64, requires_grad=True) for n in (5, 6, 6))
    dropout, seed = 0.3, 1234
    keep = _keep(torch.Size([2, 3, 5, 6]), dropout, seed, q.device)
    weights = (q @ k.transpose(-1, -2) / 2).softmax(-1)
    assert keep.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]  # kept weights are scaled
    expected = (weights * keep.double()) @ v
    grad = torch.randn_like(expected)
    reference = torch.autograd.grad(expected, (q, k, v), grad)

    from msabench.layers import _DroppedAttention

    out = _DroppedAttention.apply(q, k, v, dropout, seed, None)
    assert torch.allclose(out, expected, atol=1e-12)
    for ours, theirs in zip(torch.autograd.grad(out, (q, k, v), grad), reference, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-10)


def test_dropped_attention_drops_at_the_rate_and_follows_the_global_seed():
    mask = _keep(torch.Size([400, 500]), 0.3, seed=7, device=torch.device("cpu"))
    assert (mask == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert torch.equal(mask, _keep(torch.Size([400, 500]), 0.3, seed=7, device=torch.device("cpu")))
    q = torch.randn(1, 2, 4, 3)
    torch.manual_seed(5)
    first = dropped_attention(q, q, q, 0.5)
    torch.manual_seed(5)
    assert torch.equal(first, dropped_attention(q, q, q, 0.5))
    assert not torch.equal(first, dropped_attention(q, q, q, 0.5))


def test_mult_causal_mask_is_mmsas_buffered_future_mask():
    for queries, keys in ((4, 4), (3, 6), (6, 3)):
        future = torch.triu(torch.full((queries, keys), -math.inf), 1 + abs(keys - queries))  # MMSA's definition
        assert torch.equal(mult_causal_mask(queries, keys), ~torch.isinf(future))


def reference_mult(transformer, x, source, mask=None):
    """MulT's TransformerEncoder (fairseq's layer, pre-norm) written out: full-length, seq-first maths."""
    dim = transformer.dim

    def embed(h):
        positions = sinusoidal_positions(h.shape[1], dim)[None]
        return math.sqrt(dim) * h + positions

    h, s = embed(x), embed(source) if source is not None else None
    for layer in transformer.layers:
        heads, per = layer.heads, dim // layer.heads
        normed = layer.norms[0](h)
        keys = layer.norms[0](s) if s is not None else normed
        w, b = layer.in_proj, layer.in_bias
        q, k, v = (
            normed @ w[:dim].T + b[:dim],
            keys @ w[dim : 2 * dim].T + b[dim : 2 * dim],
            keys @ w[2 * dim :].T + b[2 * dim :],
        )

        q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, per).transpose(1, 2) for t in (q, k, v))
        scores = q * per**-0.5 @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(h.shape)
        h = h + layer.out_proj(attended)
        h = h + layer.fc2(F.relu(layer.fc1(layer.norms[1](h))))
    return transformer.norm(h)


@pytest.mark.parametrize("causal", [False, True])
def test_crossmodal_transformer_equals_mults_equations(causal, calls):
    torch.manual_seed(4)
    transformer = CrossmodalTransformer(8, 2, layers=2, causal=causal).eval()
    x, source = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    mask = mult_causal_mask(5, 7) if causal else None
    assert torch.allclose(transformer(x, None, source, None), reference_mult(transformer, x, source, mask), atol=1e-5)
    self_mask = mult_causal_mask(5, 5) if causal else None
    assert torch.allclose(transformer(x), reference_mult(transformer, x, None, self_mask), atol=1e-5)


def test_crossmodal_transformer_on_padded_batches_equals_each_sequence_alone(calls):
    torch.manual_seed(5)
    transformer = CrossmodalTransformer(8, 2, layers=2).eval()
    x, x_len = padded(3, 6, 8, (6, 4, 2))
    source, s_len = padded(3, 9, 8, (3, 9, 5), seed=1)
    out = transformer(x, x_len, source, s_len)
    for i in range(3):
        alone = transformer(x[i : i + 1, : x_len[i]], None, source[i : i + 1, : s_len[i]], None)
        assert torch.allclose(out[i, : x_len[i]], alone[0], atol=1e-5)
        assert torch.all(out[i, x_len[i] :] == 0)


def test_mult_positions_skip_frames_whose_first_feature_is_zero():
    transformer = CrossmodalTransformer(4, 2, layers=0, positions="mult")
    x = torch.ones(1, 3, 4)
    x[0, 1, 0] = 0  # MulT's make_positions counts this frame as padding
    frames = Frames(None, 3, 1, x.device)
    embedded = transformer.embed(frames.pack(x), frames)
    table = sinusoidal_positions(3, 4)
    assert torch.allclose(embedded[0], 2 * x[0, 0] + table[0]) and torch.allclose(embedded[1], 2 * x[0, 1])
    assert torch.allclose(embedded[2], 2 * x[0, 2] + table[2])


def test_causal_transformer_refuses_lengths_it_would_ignore():
    transformer = CrossmodalTransformer(4, 2, layers=1, causal=True)
    frames = Frames(torch.tensor([2, 3]), 3, 2, torch.device("cpu"))
    with pytest.raises(ValueError, match="full-length"):
        transformer.run(torch.randn(5, 4), frames)
