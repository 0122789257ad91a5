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


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """The host's fake plugin (`fakes.Plugin`: tiny-data, mean-linear, fake-concat, the method `tiny`) beside the
    installed plugins, for anything that builds its own plugin manager (the run API, the command); and a scratch
    working directory."""
    import msabench.plugins
    from fakes import Plugin

    monkeypatch.chdir(tmp_path)
    real = msabench.plugins.get_plugin_manager

    def with_fakes(load_entrypoints=True):
        pm = real(load_entrypoints)
        pm.register(Plugin(), name="fakes")
        return pm

    monkeypatch.setattr(msabench.plugins, "get_plugin_manager", with_fakes)


@pytest.fixture
def invoke(fakes):
    """`msabench ARGS` in-process, with the fake plugin installed: ``invoke("run", "-m", "tiny", ...)``."""
    from click.testing import CliRunner

    from msabench.cli import cli

    return lambda *args: CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
