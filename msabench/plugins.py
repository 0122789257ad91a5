"""The plugin manager: built-in and third-party plugins, all found through the `msabench` entry-point group."""

from __future__ import annotations

import functools
import importlib.metadata
import os
from types import ModuleType

import pluggy

from msabench import hookspecs
from msabench.errors import PluginError

ENTRY_POINT_GROUP = "msabench"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__("msabench")
        self.distributions: dict[str, tuple[str, str]] = {}


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """A fresh manager with the hook specs, and (by default) every installed plugin.

    ``MSABENCH_LOAD_PLUGINS`` limits which entry points load: a comma-separated list of
    entry-point or distribution names; an empty string loads none.
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        _load_entrypoints(pm, os.environ.get("MSABENCH_LOAD_PLUGINS"))
    pm.check_pending()
    return pm


def _load_entrypoints(pm: PluginManager, only: str | None) -> None:
    entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    if only is not None:
        wanted = {name.strip() for name in only.split(",") if name.strip()}
        known = {ep.name for ep in entry_points} | {ep.dist.name for ep in entry_points if ep.dist}
        if missing := sorted(wanted - known):
            raise PluginError(
                f"MSABENCH_LOAD_PLUGINS names {', '.join(missing)}, which no installed plugin provides. "
                f"Installed: {', '.join(sorted(ep.name for ep in entry_points)) or 'none'}."
            )
        entry_points = [ep for ep in entry_points if ep.name in wanted or (ep.dist and ep.dist.name in wanted)]
    for ep in entry_points:
        others = ",".join(other.name for other in entry_points if other.name != ep.name)
        dist = (ep.dist.name, ep.dist.version) if ep.dist else ("unknown", "")
        try:
            pm.register(ep.load(), name=ep.name)
            pm.distributions[ep.name] = dist
        except Exception as error:
            raise PluginError(
                f"Error loading msabench plugin {ep.name!r} from {' '.join(dist).strip()}: {type(error).__name__}: {error}. "
                f"Fix or uninstall it, or set MSABENCH_LOAD_PLUGINS={others!r} to skip it."
            ) from error


def distribution(pm: pluggy.PluginManager, name: str) -> tuple[str, str]:
    """(distribution, version) that ships the plugin registered as `name`; ("unknown", "") if not installed."""
    if name in getattr(pm, "distributions", {}):
        return pm.distributions[name]
    plugin = pm.get_plugin(name)
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    for dist in _top_level_distributions().get(module.split(".")[0], []):
        return dist, importlib.metadata.version(dist)
    return "unknown", ""


@functools.cache
def _top_level_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def get_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """One entry per registered plugin: its name, distribution, version and the hooks it implements."""
    plugins = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist, version = distribution(pm, name)
        hooks = sorted(impl.function.__name__ for impl in _hookimpls(pm, plugin))
        plugins.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
    return plugins


def _hookimpls(pm: pluggy.PluginManager, plugin: object):
    for caller in pm.get_hookcallers(plugin) or []:
        yield from (impl for impl in caller.get_hookimpls() if impl.plugin is plugin)
