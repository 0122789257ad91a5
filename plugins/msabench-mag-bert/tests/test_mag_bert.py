"""MAG-BERT: the gate's alpha and displacement by hand, BERT's layers run through transformers' BertModel, the
run on a small aligned pickle (random and saved checkpoints), and its refusal of IEMOCAP."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from msabench import Catalog, CatalogError, Task, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench.testing import write_tiny_file  # noqa: E402
from msabench_core.iemocap import IEMOCAP  # noqa: E402
from msabench_core.mmsa import MOSIAligned  # noqa: E402
from msabench_mag_bert.fusion import AdaptationGate, MAGBert  # noqa: E402

TASK = Task("regression", "mosi", (-3.0, 3.0))


def test_alpha_is_min_of_beta_times_the_norm_ratio_and_one():
    gate = AdaptationGate(2, 1, 1, beta=1.0)
    e = torch.tensor([[[3.0, 0.0], [3.0, 0.0], [0.0, 3.0]]])
    h = torch.tensor([[[0.0, 6.0], [1.0, 0.0], [0.0, 0.0]]])
    assert gate.scale(e, h).flatten().tolist() == pytest.approx([0.5, 1.0, 1.0], abs=1e-5)  # 3/6; min(3, 1); H = 0
    gate.beta = 0.2
    assert gate.scale(e, torch.tensor([[[2.0, 0.0]] * 3])).flatten().tolist() == pytest.approx([0.3] * 3, abs=1e-5)


def test_the_gate_shifts_each_word_by_the_gated_displacement():
    torch.manual_seed(0)
    gate = AdaptationGate(2, 1, 1).eval()
    e, a, v = torch.randn(1, 3, 2), torch.randn(1, 3, 1), torch.randn(1, 3, 1)
    h = torch.relu(gate.gate_vision(torch.cat([v, e], -1))) * gate.vision(v)
    h = h + torch.relu(gate.gate_audio(torch.cat([a, e], -1))) * gate.audio(a)
    alpha = torch.clamp(e.norm(dim=-1) / (h.norm(dim=-1) + 1e-6), max=1.0)[..., None]
    assert torch.allclose(gate(e, a, v), gate.norm(e + alpha * h))


def test_bert_layers_run_through_transformers_bert_model_on_the_text_mask():
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    reference = BertModel(
        BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)
    ).eval()
    fusion = MAGBert({"text": 8, "audio": 2, "vision": 3}, TASK, layers=2, heads=2, intermediate_size=16).eval()
    fusion.bert.encoder.load_state_dict(reference.encoder.state_dict())
    fusion.bert.pooler.load_state_dict(reference.pooler.state_dict())
    fusion.gate.forward = lambda e, a, v: e  # no shift: BERT's own embeddings go through
    ids = torch.randint(1, 30, (2, 5))
    lengths = torch.tensor([5, 3])
    mask = (torch.arange(5)[None] < lengths[:, None]).long()
    embedded = reference.embeddings(input_ids=ids)
    features = {"text": embedded, "audio": torch.randn(2, 5, 2), "vision": torch.randn(2, 5, 3)}
    pooled = reference(input_ids=ids, attention_mask=mask).pooler_output
    assert torch.allclose(
        fusion(features, {"text": lengths, "audio": lengths, "vision": lengths})["prediction"],
        fusion.out(pooled),
        atol=1e-5,
    )


def run(tmp_path, *sets):
    args = ["run", "-m", "mag-bert", "-d", "mosi-aligned", "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    return CliRunner().invoke(
        cli, [*args, *(arg for value in ("train.batch_size=8", *sets) for arg in ("--set", value))]
    )


def test_mag_bert_runs_on_mosi_aligned_with_random_bert(tmp_path):
    write_tiny_file(MOSIAligned, tmp_path / "data", aligned=True)
    sets = [
        "text.random_init=true",
        "text.hidden_size=16",
        "fusion.pretrained=null",
        "fusion.layers=1",
        "fusion.intermediate_size=32",
    ]
    outcome = run(tmp_path, *sets)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "mosi-aligned").rglob("seed-1111.json")
    result = json.loads(path.read_text())
    assert result["hparams"]["train"] == {"batch_size": 8, "lr": 2e-5, "weight_decay": 0.0, "eval_batch_size": 8}
    assert (
        result["hparams"]["fusion"]["dropout"] == 0.3 and result["method_info"]["encoders"]["text"] == "bert-embeddings"
    )


def test_mag_bert_loads_both_halves_from_one_saved_checkpoint_and_refuses_a_mismatch(tmp_path):
    from transformers import BertConfig, BertModel

    write_tiny_file(MOSIAligned, tmp_path / "data", aligned=True)
    config = dict(vocab_size=30522, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(BertConfig(hidden_size=16, **config)).save_pretrained(tmp_path / "bert16")
    BertModel(BertConfig(hidden_size=8, **config)).save_pretrained(tmp_path / "bert8")
    assert (
        run(tmp_path, f"text.pretrained={tmp_path / 'bert16'}", f"fusion.pretrained={tmp_path / 'bert16'}").exit_code
        == 0
    )
    outcome = run(tmp_path, f"text.pretrained={tmp_path / 'bert16'}", f"fusion.pretrained={tmp_path / 'bert8'}")
    assert outcome.exit_code == 1
    assert (
        "is 8 wide but the text embeddings are 16; give the text encoder and the fusion the same checkpoint"
        in outcome.output
    )


def test_mag_bert_refuses_iemocap_before_training():
    catalog = Catalog.from_plugins(get_plugin_manager())
    with pytest.raises(
        CatalogError, match="^method 'mag-bert' handles regression tasks; dataset 'iemocap' is a multilabel"
    ):
        catalog.check(catalog.methods["mag-bert"], IEMOCAP)
