import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own home, data root and caches: nothing reads or writes the user's
    (~/.cache/msabench/sha256.json, the feature cache, the Hugging Face cache, ~/.local/share)."""
    root = tmp_path_factory.mktemp("environment")  # beside the test's tmp_path, which stays empty
    home = root / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MSABENCH_DATA", str(root / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "share"))
    monkeypatch.setenv("HF_HOME", str(root / "huggingface"))
    monkeypatch.delenv("MSABENCH_CACHE", raising=False)
    monkeypatch.delenv("MSABENCH_MODELS", raising=False)
    monkeypatch.delenv("MSABENCH_LOAD_PLUGINS", raising=False)
