"""The plugin manager: built-in and third-party plugins, all found through the `msabench` entry-point group.

A plugin that fails to import, or implements a hook msabench does not define (a typo), is not fatal: it is
recorded as a `Problem` (the plugin, what is wrong, the fix) that every command prints as a warning, and only
the names that plugin provides stop working. Asking for one of them is an error that says why.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import pluggy

from msabench import hookspecs
from msabench.errors import PluginError

ENTRY_POINT_GROUP = "msabench"
HOOKS = tuple(name for name in vars(hookspecs) if name.startswith("register_"))


@dataclass(frozen=True)
class Problem:
    """Something wrong with one plugin, in one line that says what to do about it."""

    plugin: str
    message: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering where each entry-point plugin came from and what went wrong loading plugins."""

    def __init__(self) -> None:
        super().__init__("msabench")
        self.distributions: dict[str, tuple[str, str]] = {}
        self.problems: list[Problem] = []
        self.entry_points: list[str] = []  # the entry points this manager was asked to load

    def skip_hint(self, plugin: str) -> str:
        """The exact setting that loads every other plugin but this one."""
        others = ",".join(name for name in self.entry_points if name != plugin)
        return f"MSABENCH_LOAD_PLUGINS={others!r}"


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """A fresh manager with the hook specs, and (by default) every installed plugin.

    ``MSABENCH_LOAD_PLUGINS`` limits which entry points load: a comma-separated list of
    entry-point or distribution names; an empty string loads none.
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        _load_entrypoints(pm, os.environ.get("MSABENCH_LOAD_PLUGINS"))
    check_hooks(pm)
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
    pm.entry_points = [ep.name for ep in entry_points]
    for ep in entry_points:
        dist = (ep.dist.name, ep.dist.version) if ep.dist else ("unknown", "")
        pm.distributions[ep.name] = dist
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as error:  # import errors, and pluggy refusing a hook's arguments
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            pm.problems.append(
                Problem(
                    ep.name,
                    f"msabench plugin {ep.name!r} ({' '.join(dist).strip()}) failed to load: "
                    f"{type(error).__name__}: {_first_line(error)}. Its datasets, encoders, fusions, objectives and "
                    f"methods are unavailable. Fix or uninstall it, or set {pm.skip_hint(ep.name)} to skip it.",
                )
            )


def check_hooks(pm: PluginManager) -> None:
    """pluggy's `check_pending`, as problems: an implementation of a hook that no spec defines (a misspelt
    `register_*` name) would silently never run; it is reported with the hook it probably meant."""
    for name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(name, HOOKS, n=1)
            meant = f"; did you mean {close[0]}?" if close else f"; the hooks are {', '.join(HOOKS)}."
            pm.problems.append(
                Problem(
                    impl.plugin_name,
                    f"msabench plugin {impl.plugin_name!r} implements a hook named {name!r}, which msabench does not "
                    f"define{meant} It is never called: rename it, or set {pm.skip_hint(impl.plugin_name)} to skip the "
                    "plugin.",
                )
            )


def distribution(pm: pluggy.PluginManager, name: str) -> tuple[str, str]:
    """(distribution, version) that ships the plugin registered as `name`; ("unknown", "") if not installed."""
    if isinstance(pm, PluginManager) and name in pm.distributions:
        return pm.distributions[name]
    plugin = pm.get_plugin(name)
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    for dist in _top_level_distributions().get(module.split(".")[0], []):
        return dist, importlib.metadata.version(dist)
    return "unknown", ""


@functools.cache
def _top_level_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def get_plugins(pm: pluggy.PluginManager, reserved: tuple[str, ...] = ()) -> list[dict]:
    """One entry per registered plugin: its name, distribution, version, the hooks it implements and the commands it
    adds (those not taken by a name in `reserved`, the built-in commands)."""
    plugins = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist, version = distribution(pm, name)
        hooks = sorted(impl.function.__name__ for impl in _hookimpls(pm, plugin))
        entry = {"name": name, "distribution": dist, "version": version, "hooks": hooks}
        found, _ = commands(pm, reserved)
        if own := sorted(command for command, (owner, _) in found.items() if owner == name):
            entry["commands"] = own
        plugins.append(entry)
    return plugins


def commands(
    pm: pluggy.PluginManager, reserved: tuple[str, ...]
) -> tuple[dict[str, tuple[str, object]], list[Problem]]:
    """({command name: (plugin, click command)}, problems): what the plugins' register_commands hooks add, each run
    against a group of its own. A name in `reserved` (a built-in command) or added by two plugins is left out, as a
    problem naming the plugin."""
    import click

    found: dict[str, tuple[str, object]] = {}
    problems = []
    for impl in pm.hook.register_commands.get_hookimpls():
        scratch = click.Group()
        try:
            impl.function(cli=scratch)
        except Exception as error:
            problems.append(
                Problem(
                    impl.plugin_name,
                    f"msabench plugin {impl.plugin_name!r} failed in register_commands: {type(error).__name__}: "
                    f"{_first_line(error)}. Its commands are unavailable.",
                )
            )
            continue
        for name, command in scratch.commands.items():
            if name in reserved or name in found:
                other = "is a built-in command" if name in reserved else f"is added by plugin {found[name][0]!r} too"
                problems.append(
                    Problem(
                        impl.plugin_name,
                        f"msabench plugin {impl.plugin_name!r} adds a command {name!r}, which "
                        f"{other}; it is left out. Rename it.",
                    )
                )
                continue
            found[name] = (impl.plugin_name, command)
    return found, problems


def _hookimpls(pm: pluggy.PluginManager, plugin: object):
    for caller in pm.get_hookcallers(plugin) or []:
        yield from (impl for impl in caller.get_hookimpls() if impl.plugin is plugin)


def _first_line(error: BaseException, limit: int = 400) -> str:
    """The error's message on one line (pluggy puts the useful part on the second)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
