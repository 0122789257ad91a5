"""MAG-BERT (Rahman et al., "Integrating Multimodal Information in Large Pretrained Transformers", ACL 2020) as
MMSA runs it on word-aligned data: BERT's embedding module over `text_bert` (`bert-embeddings`), the audio and
vision frames as sequences (`identity`), the multimodal adaptation gate and BERT's encoder and pooler
(`mag-bert` fusion), L1 loss (MMSA's criterion).

Hyper-parameters are MMSA's (config_regression.json, "bert_mag"): batch 32, Adam at 2e-5/1e-5/5e-5
(MOSI/MOSEI/CH-SIMS) without weight decay, beta 1, gate dropout 0.3/0.2/0.1, bert-base-uncased (English) and
bert-base-chinese (CH-SIMS). As in MMSA, the gate sits after the embedding layer (the paper's best position)
and BERT's pooled [CLS] output feeds the regression. On synthetic data (no tokenizer) both halves of BERT are a
small random model (width 32, 2 layers) trained at 1e-3. MMSA publishes no MAG-BERT numbers, so no reported row
is shown. MAG-BERT needs BERT token ids: IEMOCAP is refused before training.
"""

from msabench import Method, hookimpl

from .fusion import MAGBert


def recipe(lr, dropout, pretrained):
    return {
        "text": {"pretrained": pretrained},
        "fusion": {"pretrained": pretrained, "beta": 1.0, "dropout": dropout},
        "train": {"batch_size": 32, "lr": lr, "weight_decay": 0.0},
    }


SYNTHETIC = {
    "text": {"pretrained": None, "hidden_size": 32},
    "fusion": {"pretrained": None, "layers": 2, "heads": 2, "intermediate_size": 64},
    "train": {"lr": 1e-3},
}

METHOD = Method(
    name="mag-bert",
    paper="Rahman et al., ACL 2020",
    url="https://github.com/WasifurRahman/BERT_multimodal_transformer",
    encoders={"text": "bert-embeddings", "audio": "identity", "vision": "identity"},
    fusion="mag-bert",
    objective="l1",
    hparams=recipe(2e-5, 0.3, "bert-base-uncased"),
    overrides={
        "mosei": recipe(1e-5, 0.2, "bert-base-uncased"),
        "ch-sims": recipe(5e-5, 0.1, "bert-base-chinese"),
        **{name: SYNTHETIC for name in ("synthetic-mosi", "synthetic-mosi-aligned", "synthetic-sims")},
    },
)


@hookimpl
def register_fusions(register):
    register(MAGBert)


@hookimpl
def register_methods(register):
    register(METHOD)
