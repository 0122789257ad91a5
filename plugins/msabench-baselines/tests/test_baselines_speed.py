"""The shortcuts that make LF-DNN, TFN and LMF fast on a CPU keep their semantics."""

import pytest
import torch
from torch import nn

from msabench_baselines.dropout import BulkDropout


def test_bulk_dropout_keeps_one_minus_p_and_scales_kept_values():
    torch.manual_seed(0)
    x = torch.randn(64, 5000)
    dropout = BulkDropout(0.3).train()
    y = dropout(x)
    kept = y != 0
    n = x.numel()
    assert abs(kept.float().mean().item() - 0.7) < 4 * (0.7 * 0.3 / n) ** 0.5
    assert torch.equal(y[kept], x[kept] * torch.tensor(1 / 0.7, dtype=torch.float32))
    assert y.shape == x.shape and y.dtype == x.dtype


def test_bulk_dropout_masks_repeat_with_the_torch_seed_and_differ_between_calls():
    x = torch.ones(32, 1001)
    dropout = BulkDropout(0.5).train()
    torch.manual_seed(7)
    first, second = dropout(x), dropout(x)
    torch.manual_seed(7)
    assert torch.equal(dropout(x), first) and torch.equal(dropout(x), second)
    assert not torch.equal(first, second)


def test_bulk_dropout_masks_do_not_depend_on_the_chunk_size(monkeypatch):
    x = torch.ones(3, 100_001)
    masks = []
    for chunk in (1 << 20, 4096, 2):
        monkeypatch.setattr(BulkDropout, "CHUNK", chunk)
        torch.manual_seed(3)
        masks.append(BulkDropout(0.2).train()(x))
    assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])


def test_bulk_dropout_gradient_is_the_mask():
    x = torch.ones(8, 999, requires_grad=True)
    torch.manual_seed(1)
    y = BulkDropout(0.4).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())
    assert torch.unique(x.grad).tolist() == [0.0, torch.tensor(1 / 0.6, dtype=torch.float32).item()]


def test_bulk_dropout_identity_in_eval_and_at_p0_zero_at_p1():
    x = torch.randn(4, 10)
    assert BulkDropout(0.5).eval()(x) is x
    assert BulkDropout(0.0).train()(x) is x
    assert torch.equal(BulkDropout(1.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\], got 1.5"):
        BulkDropout(1.5)


def lstm_text(hidden=16):
    from msabench import InputSpec
    from msabench_baselines.encoders import LSTMText

    torch.manual_seed(0)
    return LSTMText(InputSpec("text", (12, 24)), hidden=hidden, out=8).eval()


def test_lstm_text_stops_at_each_samples_last_real_step():
    encoder = lstm_text()
    x = torch.randn(5, 12, 24)
    for lengths in (torch.tensor([12, 3, 7, 12, 1]), torch.full((5,), 12)):
        out = encoder(x, lengths)
        alone = torch.cat([encoder(x[i : i + 1, :n], None) for i, n in enumerate(lengths.tolist())])
        assert torch.allclose(out, alone, atol=1e-6)


def test_lstm_text_packs_only_varying_lengths_and_keeps_their_results():
    encoder = lstm_text()
    x = torch.randn(6, 12, 24)
    lengths = torch.tensor([12, 5, 12, 9, 2, 12])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    reference = encoder.linear(encoder.lstm(packed)[1][0][-1])  # the packed path as it always ran
    assert torch.equal(encoder(x, lengths), reference)
    torch.backends.mkldnn.enabled = False
    full = encoder.linear(encoder.lstm(x)[1][0][-1])  # torch's native kernels, unpacked
    torch.backends.mkldnn.enabled = True
    assert torch.equal(encoder(x, torch.full((6,), 12)), full)
    assert torch.equal(encoder(x, torch.full((6,), 40)), full)  # lengths beyond the padding count as full
    assert torch.backends.mkldnn.enabled
