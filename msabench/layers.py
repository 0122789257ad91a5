"""Building blocks several methods share: masks and pooling by sequence length, a packed LSTM, sinusoidal
positions, attention over the real frames of each sequence (MulT's crossmodal Transformer), average
pooling of a sequence to a target length, and the groups of a flat batch as padded sequences (contextual methods).

Sequences are ``[B, L, D]`` with their real lengths ``[B]`` (frames ``0 .. length-1`` are real, the rest is
padding); ``lengths=None`` means every frame is real.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn


def length_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, steps]`` booleans, True at each sequence's real frames."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def full_length(lengths: torch.Tensor | None, steps: int) -> bool:
    """Whether every sequence is real to its last frame (then nothing needs masking or packing)."""
    return lengths is None or bool((lengths >= steps).all())


def masked_mean(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The mean over each sequence's real frames: ``[B, L, D]`` -> ``[B, D]``."""
    if lengths is None:
        return x.mean(1)
    lengths = lengths.clamp(1, x.shape[1])
    weights = length_mask(lengths, x.shape[1]).to(x.dtype)
    return torch.einsum("bld,bl->bd", x, weights) / lengths[:, None].to(x.dtype)


def last_step(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each sequence's last real frame: ``[B, L, D]`` -> ``[B, D]``."""
    if lengths is None:
        return x[:, -1]
    index = (lengths.clamp(1, x.shape[1]) - 1).to(x.device)
    return x[torch.arange(len(x), device=x.device), index]


def pool_to(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Average-pool a sequence to `steps` frames, as MMSA's AlignSubNet (``avg_pool``) aligns audio and vision to
    the text: the padded sequence is extended with copies of its last frame to a multiple of `steps`, cut into
    `steps` equal windows and each window averaged. A sequence of `steps` frames is returned as it is."""
    length = x.shape[1]
    if length == steps:
        return x
    window = -(-length // steps)
    extra = window * steps - length
    if extra:
        x = torch.cat([x, x[:, -1:].expand(-1, extra, -1)], dim=1)
    return x.reshape(x.shape[0], steps, window, x.shape[2]).mean(2)


def pooled_lengths(lengths: torch.Tensor | None, length: int, steps: int) -> torch.Tensor | None:
    """The real frames of a sequence of `length` frames after `pool_to(x, steps)`: windows holding a real frame."""
    if lengths is None or length == steps:
        return lengths
    window = -(-length // steps)
    return (-(-lengths.clamp(1, length) // window)).clamp(1, steps)


def sinusoidal_positions(steps: int, dim: int, first: int = 1) -> torch.Tensor:
    """``[steps, dim]`` sinusoidal position embeddings for positions ``first .. first+steps-1``, in the
    tensor2tensor layout fairseq (and so MulT) uses: sines in the first half, cosines in the second, the
    frequencies ``10000^(-i / (dim/2 - 1))``; an odd `dim` gets a zero last column."""
    half = dim // 2
    rate = math.log(10000) / max(half - 1, 1)
    frequencies = torch.exp(torch.arange(half, dtype=torch.float64) * -rate)
    angles = torch.arange(first, first + steps, dtype=torch.float64)[:, None] * frequencies[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(steps, 1, dtype=table.dtype)], dim=1)
    return table.float()


class PackedLSTM(nn.Module):
    """An LSTM over each sequence's real frames (``batch_first``).

    ``forward(x, lengths)`` returns the outputs ``[B, L, H * directions]`` (zero at padding) and the final
    hidden states ``[layers * directions, B, H]`` at each sequence's last real frame. Sequences are packed
    only when some are shorter than the batch's length; when none is, packing would change nothing and
    cost time, so the plain LSTM runs."""

    def __init__(
        self, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False, dropout: float = 0.0
    ):
        super().__init__()
        self.lstm = nn.LSTM(
            input_size,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        steps = x.shape[1]
        if lengths is None or full_length(lengths, steps):
            outputs, (final, _) = self.lstm(x)
            return outputs, final
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(1, steps).cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, (final, _) = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=steps)
        return outputs, final

    def last(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The last layer's state at each sequence's last real frame, ``[B, H * directions]``.

        One-directional, this is the plain LSTM over the padded batch read at each sequence's last real frame:
        the frames after it never reach it, so the values are those of the packed run (to float rounding), and on
        a CPU the backward costs a sixteenth of the packed one's (24 x 400 x 74, hidden 256: 0.22 s against 3.5 s;
        bench/README.md). Both directions need packing (the backward direction starts at the last real frame)."""
        steps = x.shape[1]
        if self.lstm.bidirectional or lengths is None or full_length(lengths, steps):
            _, final = self(x, lengths)
            return torch.cat(list(final[-(2 if self.lstm.bidirectional else 1) :]), dim=-1)
        lengths = lengths.clamp(1, steps).to(x.device)
        outputs, _ = self.lstm(x[:, : int(lengths.max())])
        return outputs[torch.arange(len(x), device=x.device), lengths - 1]


# -- attention over real frames ------------------------------------------------------------------


class Frames:
    """Where the real frames of a padded batch ``[B, L, ...]`` are, computed once per batch and shared by every
    layer that reads the batch: their flat indices, each sequence's offset into the packed frames, and each
    frame's position in its sequence. ``lengths=None`` (or all full) keeps every frame."""

    def __init__(self, lengths: torch.Tensor | None, steps: int, batch: int, device: torch.device):
        self.steps, self.batch = steps, batch
        self.full = lengths is None or full_length(lengths, steps)
        if lengths is None or self.full:
            self.lengths = torch.full((batch,), steps, dtype=torch.long)
            self.mask = None
            self.positions = torch.arange(steps, device=device).repeat(batch)
        else:
            self.lengths = lengths.clamp(1, steps).long().cpu()
            self.mask = length_mask(self.lengths.to(device), steps)
            self.positions = self.mask.nonzero()[:, 1]
        self.sizes = self.lengths.tolist()

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]`` -> the real frames ``[N, D]``, sequence after sequence."""
        return x.reshape(-1, x.shape[-1]) if self.full else x[self.mask]

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """The real frames ``[N, D]`` -> ``[B, L, D]`` with zeros at padding."""
        if self.full:
            return packed.reshape(self.batch, self.steps, -1)
        out = packed.new_zeros(self.batch, self.steps, packed.shape[-1])
        out[self.mask] = packed
        return out

    def last(self, packed: torch.Tensor) -> torch.Tensor:
        """Each sequence's last real frame from the packed frames: ``[N, D]`` -> ``[B, D]``."""
        ends = torch.tensor(self.sizes).cumsum(0) - 1
        return packed[ends.to(packed.device)]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    queries: Frames,
    keys: Frames,
    heads: int,
    dropout: float = 0.0,
    mask: torch.Tensor | None = None,
    drop: str = "weights",
) -> torch.Tensor:
    """Multi-head scaled dot-product attention of packed query frames ``[Nq, D]`` over packed key/value frames
    ``[Nk, D]``, each sequence attending only to its own real frames; returns ``[Nq, D]``.

    Each sequence runs through ``torch.nn.functional.scaled_dot_product_attention`` on its real frames only, so
    padding costs nothing and no padding mask is built; when every sequence is full, one batched call does it,
    and so it does for short sequences (up to `SMALL` query x key frames), with a per-key padding mask.
    `mask` (``[Lq, Lk]`` booleans, True = may attend) applies to full-length batches (MulT's causal mask).

    `dropout` drops attention weights, each on its own (``drop="weights"``, as MulT and MMSA do). PyTorch's fused
    CPU kernels have no dropout (with it, SDPA falls back to materialising and keeping every attention map), so on
    the CPU `dropped_attention` does it instead: the same attention, its weights dropped elementwise, nothing but
    the inputs kept for backward; it is still 2-3 times slower than the fused kernel. ``drop="keys"`` drops each
    key of each head for all the queries at once (the values scaled by a keep mask per key), which the fused
    kernel runs: each query's attention sees the same drop probability per weight as with ``"weights"``, but
    the queries of a head share their draws."""
    dim = q.shape[-1]
    per_head = dim // heads
    if drop not in ("weights", "keys"):
        raise ValueError(f"attention dropout {drop!r} is not one of weights, keys")
    manual = dropout > 0 and drop == "weights" and q.device.type == "cpu"

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if manual:
            return dropped_attention(q, k, v, dropout, mask)
        if dropout > 0 and drop == "keys":
            keep = torch.rand(v.shape[:-1], device=v.device) >= dropout
            return _fused(q, k, v * (keep.unsqueeze(-1).to(v.dtype) / (1 - dropout)), mask, 0.0)
        return _fused(q, k, v, mask, dropout)

    full = queries.full and keys.full
    if mask is not None and not full:
        raise ValueError("a query/key mask applies to full-length sequences only")
    if (full and not manual) or queries.steps * keys.steps <= SMALL:
        # One batched call: for full-length batches (the fused kernel tiles them itself), and for short sequences,
        # where one call per sequence would cost more than the padding (masked by a per-key mask).
        batch = queries.batch

        def split(x: torch.Tensor, frames: Frames) -> torch.Tensor:
            padded = frames.unpack(x)
            return padded.reshape(batch, frames.steps, heads, per_head).transpose(1, 2)

        if keys.mask is not None:
            mask = keys.mask[:, None, None, :]
        out = run(split(q, queries), split(k, keys), split(v, keys), mask)
        return queries.pack(out.transpose(1, 2).reshape(batch, queries.steps, dim))
    outs = []  # one sequence at a time: its real frames only, and attention maps that stay in the cache
    for q_one, k_one, v_one in zip(q.split(queries.sizes), k.split(keys.sizes), v.split(keys.sizes), strict=True):
        q_one, k_one, v_one = (x.reshape(1, -1, heads, per_head).transpose(1, 2) for x in (q_one, k_one, v_one))
        outs.append(run(q_one, k_one, v_one, mask).transpose(1, 2).reshape(-1, dim))
    return torch.cat(outs)


SMALL = 64 * 64  # query x key frames up to which a padded batch is attended in one call


WIDE = 16  # CPU attention kernels are several times faster with head widths padded to 16 than at MulT's 5


def _wide(x: torch.Tensor) -> torch.Tensor:
    """`x` with its last (head) dimension zero-padded to `WIDE` on the CPU (zero columns change no dot product)."""
    width = x.shape[-1]
    return F.pad(x, (0, WIDE - width)) if x.device.type == "cpu" and width < WIDE else x


def _fused(q, k, v, mask, dropout):
    width = q.shape[-1]
    out = F.scaled_dot_product_attention(
        _wide(q), _wide(k), _wide(v), attn_mask=mask, dropout_p=dropout, scale=width**-0.5
    )
    return out[..., :width]


def dropped_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q k^T / sqrt(E)) with each weight dropped with probability `dropout` (the rest scaled by
    1 / (1 - dropout)), times v: ``[..., Lq, E]``, ``[..., Lk, E]`` -> ``[..., Lq, E]``; `mask` (True = may
    attend) as in SDPA.

    What PyTorch's math kernel computes, but the attention maps are not kept for backward: only q, k, v and a
    seed are; backward recomputes the weights and regenerates the same dropout mask, as flash attention does.
    The mask draws one 16-bit uniform number per weight (four per 64-bit draw of torch's generator), so the drop
    probability is `dropout` rounded to a multiple of 1/65536; the seed comes from torch's global random stream,
    so a seeded run draws the same masks every time."""
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    return _DroppedAttention.apply(q, k, v, dropout, seed, mask)


def _keep(shape: torch.Size, dropout: float, seed: int, device: torch.device) -> torch.Tensor:
    """The keep-mask of `shape` from `seed` as floats: 1 / (1 - dropout) with probability
    1 - round(dropout * 65536) / 65536, else 0."""
    count = math.prod(shape)
    generator = torch.Generator(device=device).manual_seed(seed)
    words = torch.empty(-(-count // 4), dtype=torch.int64, device=device).random_(-(2**63), None, generator=generator)
    draws = words.view(torch.int16)[:count].reshape(shape)  # four uniform 16-bit numbers per word
    return draws.to(torch.float32).ge_(round(dropout * 65536) - 32768).mul_(1 / (1 - dropout))


class _DroppedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, dropout, seed, mask):
        scale = q.shape[-1] ** -0.5
        weights = _weights(q, k, scale, mask)
        kept = weights.mul_(_keep(weights.shape, dropout, seed, q.device).to(weights.dtype))
        ctx.save_for_backward(q, k, v)
        ctx.dropout, ctx.seed, ctx.mask, ctx.scale = dropout, seed, mask, scale
        return torch.matmul(kept, _wide(v))[..., : v.shape[-1]]

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        width = q.shape[-1]
        weights = _weights(q, k, ctx.scale, ctx.mask)
        keep = _keep(weights.shape, ctx.dropout, ctx.seed, q.device).to(weights.dtype)
        grad_v = torch.matmul((weights * keep).transpose(-1, -2), _wide(grad))[..., :width]
        grad_weights = torch.matmul(grad, v.transpose(-1, -2)).mul_(keep)
        grad_scores = grad_weights.sub_((grad_weights * weights).sum(-1, keepdim=True)).mul_(weights)
        grad_q = torch.matmul(grad_scores, _wide(k))[..., :width].mul_(ctx.scale)
        grad_k = torch.matmul(grad_scores.transpose(-1, -2), _wide(q))[..., :width].mul_(ctx.scale)
        return grad_q, grad_k, grad_v, None, None, None


def _weights(q: torch.Tensor, k: torch.Tensor, scale: float, mask: torch.Tensor | None) -> torch.Tensor:
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)
    if mask is not None:
        scores = scores.masked_fill_(~mask, -math.inf)
    return torch.softmax(scores, dim=-1)


def mult_causal_mask(queries: int, keys: int, device: torch.device | None = None) -> torch.Tensor:
    """MulT's (and MMSA's) "future" mask, ``[queries, keys]`` booleans (True = may attend): query i sees keys
    ``0 .. i + |keys - queries|`` (``buffered_future_mask``: ``triu(-inf, 1 + |keys - queries|)``)."""
    offset = abs(keys - queries)
    return torch.arange(keys, device=device)[None, :] <= torch.arange(queries, device=device)[:, None] + offset


def _linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class CrossmodalLayer(nn.Module):
    """One pre-LayerNorm Transformer layer (MulT's): multi-head attention of the target frames over the source
    frames (itself when there is no source; the same LayerNorm normalises both), then a ReLU feed-forward
    network 4x wide; dropout on the attention weights, after the ReLU and on each residual branch."""

    def __init__(
        self, dim: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float, drop: str = "weights"
    ):
        super().__init__()
        if drop not in ("weights", "keys"):
            raise ValueError(f"attention dropout {drop!r} is not one of weights, keys")
        self.drop = drop
        if dim % heads:
            raise ValueError(f"the width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj = nn.Parameter(torch.empty(3 * dim, dim))  # query, key, value projections, stacked
        self.in_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = _linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj)
        self.fc1, self.fc2 = _linear(dim, 4 * dim), _linear(4 * dim, dim)
        self.norms = nn.ModuleList([nn.LayerNorm(dim), nn.LayerNorm(dim)])
        self.attn_dropout, self.relu_dropout, self.res_dropout = attn_dropout, relu_dropout, res_dropout

    def forward(
        self,
        x: torch.Tensor,
        frames: Frames,
        source: tuple[torch.Tensor, torch.Tensor] | None = None,
        source_frames: Frames | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`x` and the (key, value) source frames are packed (`Frames.pack`); no source: self-attention."""
        dim = x.shape[-1]
        h = self.norms[0](x)
        if source is None:
            q, k, v = F.linear(h, self.in_proj, self.in_bias).chunk(3, dim=-1)
            source_frames = frames
        else:
            assert source_frames is not None, "a source comes with its frames"
            q = F.linear(h, self.in_proj[:dim], self.in_bias[:dim])
            keys, values = source
            if keys is values:
                k, v = F.linear(self.norms[0](keys), self.in_proj[dim:], self.in_bias[dim:]).chunk(2, dim=-1)
            else:
                k = F.linear(self.norms[0](keys), self.in_proj[dim : 2 * dim], self.in_bias[dim : 2 * dim])
                v = F.linear(self.norms[0](values), self.in_proj[2 * dim :], self.in_bias[2 * dim :])
        dropout = self.attn_dropout if self.training else 0.0
        h = attend(q, k, v, frames, source_frames, self.heads, dropout, mask, self.drop)
        x = x + F.dropout(self.out_proj(h), self.res_dropout, self.training)
        h = F.dropout(F.relu(self.fc1(self.norms[1](x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.res_dropout, self.training)


class CrossmodalTransformer(nn.Module):
    """MulT's Transformer encoder: a target sequence attends to a source sequence in every layer (crossmodal),
    or to itself when no source is given (MulT's memory transformers).

    Inputs are scaled by sqrt(dim), sinusoidal positions (1, 2, ...) are added to target and source, both get
    embedding dropout, then `layers` `CrossmodalLayer` and a final LayerNorm. ``forward`` takes padded
    ``[B, L, D]`` sequences and their lengths and returns ``[B, L, D]`` (zero at padding); `run` works on
    packed real frames (`Frames`), so a stack of transformers over the same batch packs it once.

    ``positions="mult"`` gives MulT's own positions instead: a frame whose first feature is exactly 0 counts as
    padding there and gets the zero vector. ``causal=True`` adds MulT's future mask (`mult_causal_mask`); it
    applies to full-length sequences, as MulT (and MMSA) run it over the padded frames.
    """

    table: torch.Tensor  # positions, a buffer grown on demand

    def __init__(
        self,
        dim: int,
        heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        positions: str = "sinusoidal",
        causal: bool = False,
        drop: str = "weights",
    ):
        super().__init__()
        if positions not in ("sinusoidal", "mult", "none"):
            raise ValueError(f"positions {positions!r} is not one of sinusoidal, mult, none")
        self.dim, self.positions, self.causal, self.embed_dropout = dim, positions, causal, embed_dropout
        self.layers = nn.ModuleList(
            CrossmodalLayer(dim, heads, attn_dropout, relu_dropout, res_dropout, drop) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("table", sinusoidal_positions(64, dim), persistent=False)  # grows on demand
        self._masks: dict[tuple[int, int, str], torch.Tensor] = {}

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        source: torch.Tensor | None = None,
        source_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        frames = Frames(None if self.causal else lengths, x.shape[1], len(x), x.device)
        if source is None:
            return frames.unpack(self.run(frames.pack(x), frames))
        keys = Frames(None if self.causal else source_lengths, source.shape[1], len(source), source.device)
        return frames.unpack(self.run(frames.pack(x), frames, keys.pack(source), keys))

    def run(
        self,
        x: torch.Tensor,
        frames: Frames,
        source: torch.Tensor | None = None,
        source_frames: Frames | None = None,
    ) -> torch.Tensor:
        """The packed real frames ``[N, D]`` of the target (and source) -> the target's outputs ``[N, D]``.

        As in MulT, the source is embedded twice, once for the keys and once for the values, so that the two
        get their own embedding dropout."""
        x = F.dropout(self.embed(x, frames), self.embed_dropout, self.training)
        pair, mask = None, None
        if source is not None:
            embedded = self.embed(source, source_frames if source_frames is not None else frames)
            keys = F.dropout(embedded, self.embed_dropout, self.training)
            values = F.dropout(embedded, self.embed_dropout, self.training) if self.training else keys
            pair = (keys, values)
        if self.causal:
            if not frames.full or (source_frames is not None and not source_frames.full):
                raise ValueError("the causal mask runs over full-length (padded) sequences; pass no lengths")
            mask = self.mask(frames.steps, source_frames.steps if source_frames else frames.steps, x.device)
        for layer in self.layers:
            x = layer(x, frames, pair, source_frames, mask)
        return self.norm(x)

    def embed(self, x: torch.Tensor, frames: Frames) -> torch.Tensor:
        """sqrt(dim) * x plus the positions (1, 2, ... within each sequence)."""
        x = math.sqrt(self.dim) * x
        if self.positions == "none":
            return x
        if len(self.table) < frames.steps:
            self.table = sinusoidal_positions(frames.steps, self.dim).to(x.device)
        positions = self.table[frames.positions.to(x.device)]
        if self.positions == "mult":
            positions = positions * (x[:, :1] != 0)
        return x + positions

    def mask(self, queries: int, keys: int, device: torch.device) -> torch.Tensor:
        key = (queries, keys, str(device))
        if key not in self._masks:
            self._masks[key] = mult_causal_mask(queries, keys, device)
        return self._masks[key]


_POOLED_WARNED: set[str] = set()


def align_to_text(features: dict[str, torch.Tensor], who: str = "") -> dict[str, torch.Tensor]:
    """The ``text``, ``audio`` and ``vision`` sequences with audio and vision average-pooled (`pool_to`) to the
    text's steps where theirs differ: what methods that need word-aligned sequences do on unaligned data, as
    MMSA's AlignSubNet (``avg_pool``) does for them. The first time `who` pools, it is logged."""
    steps = features["text"].shape[1]
    if any(features[m].shape[1] != steps for m in ("audio", "vision")) and who not in _POOLED_WARNED:
        _POOLED_WARNED.add(who)
        logging.getLogger("msabench").warning(
            "%s needs word-aligned sequences: audio (%d steps) and vision (%d) are average-pooled to the text's %d "
            "steps, as MMSA's AlignSubNet does. Use the dataset's aligned version where there is one (mosi-aligned).",
            who or "this method",
            features["audio"].shape[1],
            features["vision"].shape[1],
            steps,
        )
    return {**features, "audio": pool_to(features["audio"], steps), "vision": pool_to(features["vision"], steps)}


# -- groups of samples as sequences (contextual methods) ----------------------------------------------------------


class Groups:
    """The groups of a flat batch as padded sequences, and back: what a contextual model (the utterances of a video
    read as one sequence) needs from a batch of whole groups (`msabench.Split.batches` with ``groups``).

    ``Groups(ids)`` takes one group id per sample (``[N]``, e.g. a batch's ``group``); groups are ordered by id and
    each keeps its samples in batch order. `pad` turns ``[N, ...]`` into ``[G, L, ...]`` (zero after each group's
    `lengths` ``[G]``, L the largest group), `flat` turns ``[G, L, ...]`` back into ``[N, ...]`` in batch order; both
    pass gradients. A component given ``groups=None`` treats each sample as a group of its own:
    ``Groups(torch.arange(N))``."""

    def __init__(self, ids: torch.Tensor):
        ids = ids.reshape(-1)
        _, self.group = torch.unique(ids, return_inverse=True)  # [N]: each sample's group, 0 .. G-1
        self.lengths = torch.bincount(self.group, minlength=int(self.group.max()) + 1 if len(ids) else 0)
        order = torch.argsort(self.group, stable=True)
        starts = torch.cumsum(self.lengths, 0) - self.lengths
        self.position = torch.empty_like(self.group)  # [N]: each sample's place in its group
        self.position[order] = torch.arange(len(ids), device=ids.device) - starts[self.group[order]]
        self.steps = int(self.lengths.max()) if len(ids) else 0

    def __len__(self) -> int:
        return len(self.lengths)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, ...]`` -> ``[G, L, ...]``, zero at the padding."""
        padded = x.new_zeros((len(self.lengths), self.steps, *x.shape[1:]))
        return padded.index_put((self.group, self.position), x)

    def flat(self, padded: torch.Tensor) -> torch.Tensor:
        """``[G, L, ...]`` -> ``[N, ...]``, the samples in batch order (the padding is dropped)."""
        return padded[self.group, self.position]
