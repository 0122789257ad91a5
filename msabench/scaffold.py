"""`msabench new-plugin NAME`: a new out-of-tree plugin package, ready to install, check, run and publish.

NAME is kebab-case and names everything: the entry point ``NAME``, the distribution ``msabench-NAME``, the package
``msabench_NAME`` and the method ``NAME`` (with its fusion ``NAME-fusion`` and objective ``NAME-loss``). The files
come from the template in ``msabench/templates/plugin`` (``{{name}}``-style placeholders; ``package/`` becomes the
package's folder):

    msabench-NAME/
      pyproject.toml              the distribution and its `msabench` entry point
      README.md                   the paper fields a leaderboard shows, how to check, run and submit
      .gitignore
      msabench_NAME/__init__.py   the hooks that register the components
      msabench_NAME/method.py     the Method recipe: encoders, fusion, objective, hyper-parameters, paper
      msabench_NAME/fusion.py     a gated fusion
      msabench_NAME/objective.py  a task loss with a gate-balance term
      tests/test_conformance.py   the conformance kit (`msabench.testing`)

As written, it installs with ``pip install -e``, passes ``msabench check NAME`` and its own tests, and its method
trains on ``synthetic-mosi``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from msabench import __version__
from msabench.errors import PluginError
from msabench.plugins import ENTRY_POINT_GROUP
from msabench.results import temporary_path

TEMPLATE = Path(__file__).parent / "templates" / "plugin"
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
RENAMED = {"package": None, "gitignore": ".gitignore"}  # template names that change (None: the package's name)


@dataclass(frozen=True)
class Names:
    """What a plugin name gives: its entry point, distribution, package, display title and class-name prefix."""

    name: str
    distribution: str
    package: str
    title: str

    @property
    def placeholders(self) -> dict[str, str]:
        return {
            "{{name}}": self.name,
            "{{distribution}}": self.distribution,
            "{{package}}": self.package,
            "{{title}}": self.title,
            "{{msabench_version}}": _release(__version__),
        }


def plugin_names(name: str) -> Names:
    """The names a plugin called `name` gets; a name that is not kebab-case is a one-line error."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
        hint = f" such as {suggestion}" if suggestion and NAME.fullmatch(suggestion) else ", e.g. demo-fusion"
        raise PluginError(
            f"{name!r} is not a plugin name: use lowercase letters and digits in words joined by '-', starting with a "
            f"letter{hint} (it names the entry point, the distribution msabench-NAME and the package msabench_NAME)."
        )
    return Names(
        name=name,
        distribution=f"msabench-{name}",
        package=f"msabench_{name.replace('-', '_')}",
        title=" ".join(word.capitalize() for word in name.split("-")),
    )


def new_plugin(name: str, directory: str | Path = ".", *, catalog=None) -> Path:
    """Write the plugin package `msabench-<name>` in `directory` and return its folder. Refused in one line: a name
    that is not kebab-case, one an installed plugin, distribution or component already has (`catalog`: the
    installed components, built from the installed plugins when not given), or a folder that exists."""
    names = plugin_names(name)
    target = Path(directory) / names.distribution
    if target.exists():
        raise PluginError(f"{target} exists already: choose another --dir, or another name.")
    taken(names, catalog)
    files = render(names)
    staging = temporary_path(target)  # the whole folder appears at once, or not at all
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def render(names: Names) -> dict[str, str]:
    """relative path -> text of every file of the plugin package, in a stable order."""
    files = {}
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        parts = [RENAMED.get(part, part) or names.package for part in source.relative_to(TEMPLATE).parts]
        stem = parts[-1].removesuffix(".tmpl")
        parts[-1] = RENAMED.get(stem, stem) or names.package
        text = source.read_text(encoding="utf-8")
        for placeholder, value in names.placeholders.items():
            text = text.replace(placeholder, value)
        if "{{" in text:
            raise AssertionError(
                f"template {source} has a placeholder msabench does not fill: {text[text.find('{{') :][:40]}"
            )
        files["/".join(parts)] = text
    return files


def taken(names: Names, catalog=None) -> None:
    """Refuse a name that an installed plugin (entry point), distribution or registered component already uses."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == names.name:
            owner = entry_point.dist.name if entry_point.dist else "an installed distribution"
            raise PluginError(f"a plugin called {names.name!r} is installed already ({owner}): choose another name.")
    try:
        importlib.metadata.distribution(names.distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise PluginError(f"the distribution {names.distribution} is installed already: choose another name.")
    if catalog is None:
        from msabench.catalog import Catalog
        from msabench.plugins import get_plugin_manager

        catalog = Catalog.from_plugins(get_plugin_manager())
    for kind, component in (
        ("methods", names.name),
        ("fusions", f"{names.name}-fusion"),
        ("objectives", f"{names.name}-loss"),
    ):
        registry = catalog.registries[kind]
        if component in registry:
            raise PluginError(
                f"the {kind[:-1]} {component!r} is registered already by plugin {registry.plugin(component)!r}: "
                "choose another name."
            )


def _release(version: str) -> str:
    """The release part of a version (``0.1.0`` of ``0.1.0.dev3+g123``), for the new plugin's requirement."""
    match = re.match(r"\d+(\.\d+)*", version)
    return match.group(0) if match else "0.1"
