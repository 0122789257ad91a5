"""The plugin manager: entry points, MSABENCH_LOAD_PLUGINS, hook validation, broken plugins."""

import importlib.metadata
import json
import sys
import types

import pytest
from pluggy import PluginValidationError

from msabench import PluginError, get_plugin_manager, hookimpl
from msabench.plugins import get_plugins


def names(pm):
    return sorted(name for name, _ in pm.list_name_plugin())


def test_installed_plugins_load_through_entry_points():
    pm = get_plugin_manager()
    installed = sorted(ep.name for ep in importlib.metadata.entry_points(group="msabench"))
    assert names(pm) == installed and "core" in installed and pm.problems == []
    assert pm.distributions["core"][0] == "msabench-core"
    for ep in importlib.metadata.entry_points(group="msabench"):
        assert pm.distributions[ep.name] == (ep.dist.name, ep.dist.version)


def test_each_manager_is_fresh():
    first, second = get_plugin_manager(), get_plugin_manager()
    first.register(object(), name="extra")
    assert "extra" not in names(second)


def test_load_plugins_env_limits_what_loads(monkeypatch):
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "")
    assert names(get_plugin_manager()) == []
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "core")
    assert names(get_plugin_manager()) == ["core"]
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", " msabench-core ")  # distribution names work too
    assert names(get_plugin_manager()) == ["core"]


def test_load_plugins_env_with_an_unknown_name_is_an_error(monkeypatch):
    monkeypatch.setenv("MSABENCH_LOAD_PLUGINS", "core,nope")
    with pytest.raises(
        PluginError, match=r"MSABENCH_LOAD_PLUGINS names nope, which no installed plugin provides. Installed: .*core"
    ):
        get_plugin_manager()


@pytest.fixture
def extra_entry_points(monkeypatch):
    """Add entry points to the `msabench` group; each value is a module name (put the module in sys.modules)."""
    real = importlib.metadata.entry_points
    added = []

    def with_extra(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "msabench":
            found += [importlib.metadata.EntryPoint(name=n, value=v, group="msabench") for n, v in added]
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", with_extra)
    return lambda name, module: added.append((name, module))


def others_than(name):
    return ",".join(sorted({ep.name for ep in importlib.metadata.entry_points(group="msabench")} - {name}))


def test_a_plugin_that_fails_to_import_is_a_problem_naming_the_way_to_skip_it(extra_entry_points):
    extra_entry_points("broken", "msabench_no_such_module")
    pm = get_plugin_manager()  # no exception: the other plugins load
    assert "core" in names(pm) and "broken" not in names(pm)
    (problem,) = pm.problems
    assert problem.plugin == "broken"
    assert "msabench plugin 'broken' (unknown) failed to load: ModuleNotFoundError" in problem.message
    assert "msabench_no_such_module" in problem.message
    assert f"set MSABENCH_LOAD_PLUGINS='{others_than('broken')}' to skip it" in problem.message


def test_a_misspelled_hook_is_a_problem_that_names_the_hook_it_meant(extra_entry_points, monkeypatch):
    module = types.ModuleType("msabench_typo")

    @hookimpl
    def register_dataset(register):  # missing "s"
        pass

    module.register_dataset = register_dataset
    monkeypatch.setitem(sys.modules, "msabench_typo", module)
    extra_entry_points("typo", "msabench_typo")
    pm = get_plugin_manager()
    (problem,) = pm.problems
    assert problem.plugin == "typo"
    assert (
        "implements a hook named 'register_dataset', which msabench does not define; did you mean register_datasets?"
        in problem.message
    )
    assert f"MSABENCH_LOAD_PLUGINS='{others_than('typo')}'" in problem.message
    with pytest.raises(PluginValidationError, match="register_dataset"):
        pm.check_pending()  # what the conformance kit checks: strict


def test_a_hook_with_an_unknown_argument_is_a_problem_and_the_plugin_is_not_half_registered(
    extra_entry_points, monkeypatch
):
    module = types.ModuleType("msabench_wrong")

    @hookimpl
    def register_datasets(register):
        pass

    @hookimpl
    def register_methods(register, catalog):
        pass

    module.register_datasets, module.register_methods = register_datasets, register_methods
    monkeypatch.setitem(sys.modules, "msabench_wrong", module)
    extra_entry_points("wrong", "msabench_wrong")
    pm = get_plugin_manager()
    assert "wrong" not in names(pm)
    assert not any(impl.plugin_name == "wrong" for impl in pm.hook.register_datasets.get_hookimpls())
    (problem,) = pm.problems
    assert "'wrong'" in problem.message and "catalog" in problem.message


def test_get_plugins_lists_distribution_version_and_hooks():
    plugins = {p["name"]: p for p in get_plugins(get_plugin_manager())}
    assert plugins["core"]["distribution"] == "msabench-core"
    assert plugins["core"]["hooks"] == ["register_datasets", "register_encoders", "register_objectives"]
    json.dumps(list(plugins.values()))  # what `msabench plugins` prints
