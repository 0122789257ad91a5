"""The plugin manager: entry points, MSABENCH_LOAD_PLUGINS, hook validation, broken plugins."""

import importlib.metadata
import json

import pytest
from pluggy import PluginValidationError

from msabench import PluginError, get_plugin_manager, hookimpl
from msabench.plugins import get_plugins


def names(pm):
    return sorted(name for name, _ in pm.list_name_plugin())


def test_installed_plugins_load_through_entry_points():
    pm = get_plugin_manager()
    assert {"core", "baselines"} <= set(names(pm))
    assert pm.distributions["core"][0] == "msabench"
    assert pm.distributions["baselines"][0] == "msabench-baselines"


def test_each_manager_is_fresh():
    first, second = get_plugin_manager(), get_plugin_manager()
    first.register(object(), name="extra")
    assert "extra" not in names(second)


def test_load_plugins_env_limits_what_loads(monkeypatch):
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "")
    assert names(get_plugin_manager()) == []
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "core")
    assert names(get_plugin_manager()) == ["core"]
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "msabench-baselines, core")  # distribution names work too
    assert names(get_plugin_manager()) == ["baselines", "core"]


def test_load_plugins_env_with_an_unknown_name_is_an_error(monkeypatch):
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "core,nope")
    with pytest.raises(
        PluginError, match=r"MSABENCH_LOAD_PLUGINS names nope, which no installed plugin provides. Installed: .*core"
    ):
        get_plugin_manager()


def test_a_plugin_that_fails_to_import_is_named_with_the_way_to_skip_it(monkeypatch):
    real = importlib.metadata.entry_points

    def with_broken(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "msabench":
            found.append(
                importlib.metadata.EntryPoint(name="broken", value="msabench_no_such_module", group="msabench")
            )
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", with_broken)
    with pytest.raises(PluginError) as error:
        get_plugin_manager()
    message = str(error.value)
    assert "Error loading msabench plugin 'broken'" in message
    assert "ModuleNotFoundError" in message and "msabench_no_such_module" in message
    others = sorted(ep.name for ep in real(group="msabench"))
    assert f"MSABENCH_LOAD_PLUGINS='{','.join(others)}' to skip it" in message
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", ",".join(others))
    assert names(get_plugin_manager()) == others


def test_a_misspelled_hook_fails_validation():
    class Typo:
        @hookimpl
        def register_dataset(self, register):  # missing "s"
            pass

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Typo())
    with pytest.raises(PluginValidationError, match="register_dataset"):
        pm.check_pending()


def test_a_hook_with_an_unknown_argument_is_refused():
    class Wrong:
        @hookimpl
        def register_methods(self, register, catalog):
            pass

    with pytest.raises(PluginValidationError, match="catalog"):
        get_plugin_manager(load_entrypoints=False).register(Wrong())


def test_get_plugins_lists_distribution_version_and_hooks():
    plugins = {p["name"]: p for p in get_plugins(get_plugin_manager())}
    assert plugins["baselines"]["distribution"] == "msabench-baselines"
    assert plugins["baselines"]["hooks"] == ["register_encoders", "register_fusions", "register_methods"]
    assert {"register_datasets", "register_objectives"} <= set(plugins["core"]["hooks"])
    json.dumps(list(plugins.values()))  # what `msabench plugins` prints
