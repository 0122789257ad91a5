"""`msabench robustness` on a DECA/IDCA run (frozen CLIP towers on raw text and images, an attention that mixes the
samples of a batch): the clean evaluation reproduces the run's test metrics, and each input gets its curve. The
host's tests cover the measurement itself on fakes."""

import pytest

from msabench import Catalog, Protocol, fit, get_plugin_manager
from msabench.results import result_path
from msabench.robustness import measure
from msabench.testing import TinyImageText, tiny_data, tiny_hparams


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))


def test_deca_idca_run_end_to_end(tmp_path):
    catalog = Catalog.from_plugins(get_plugin_manager())
    method, protocol = catalog.methods["deca-idca"], Protocol(max_epochs=1)
    path = result_path(tmp_path / "results", TinyImageText.name, method.name, 1111, protocol=protocol.id)
    fit(
        method,
        tiny_data(TinyImageText),
        catalog=catalog,
        seed=1111,
        protocol=protocol,
        hparams=tiny_hparams(catalog, method, TinyImageText),
        device="cpu",
        checkpoint=path.with_suffix(".pt"),
    ).save(path)
    loaded = (TinyImageText(tmp_path), tiny_data(TinyImageText))
    report = measure(path, catalog, loaded=loaded)
    assert report["clean_matches_result"] is True and report["metric"] == "Acc" and report["secondary"] is None
    assert {m: i["kind"] for m, i in report["inputs"].items()} == {"text": "words", "image": "images"}
    assert list(report["curves"]) == ["text", "image", "all"] and list(report["missing"]) == ["text", "image"]
    assert report["summary"]["effective"] is None and report["reference"] is None
