"""Built-in plugins are packaged like a third party's: own distribution, entry point, public API only."""

import ast
import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from msabench.cli import cli
from msabench.testing import CHECKS, run_checks

ROOT = Path(__file__).parent.parent
PLUGINS = sorted(path for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").is_file())


def test_every_plugin_folder_is_a_distribution():
    folders = sorted(path for path in (ROOT / "plugins").iterdir() if path.is_dir() and not path.name.startswith("."))
    assert folders == PLUGINS


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda path: path.name)
def test_plugin_is_a_distribution_discovered_through_its_entry_point(folder):
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == folder.name and "msabench" in project["dependencies"]
    ((name, module),) = project["entry-points"]["msabench"].items()
    assert module == folder.name.replace("-", "_") and name == folder.name.removeprefix("msabench-")
    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group="msabench")}
    assert installed[name].value == module and installed[name].dist.name == folder.name


# The public API: the package root and the submodules it names as public; everything else may move.
PUBLIC = {"msabench", "msabench.formats", "msabench.layers", "msabench.pretrained", "msabench.testing"}


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda path: path.name)
def test_plugin_code_imports_only_the_public_api(folder):
    package = folder / folder.name.replace("-", "_")
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name and name.split(".")[0] == "msabench" and name not in PUBLIC
            ]
    assert not offenders, f"import only the public API ({', '.join(sorted(PUBLIC))}): {offenders}"


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda path: path.name)
def test_plugin_passes_the_conformance_kit(folder):
    outcomes = run_checks(folder.name)
    assert len(outcomes) == len(CHECKS) + 1  # every check, and that it is installed
    assert [(name, error) for name, error in outcomes if error is not None] == []


def test_committed_leaderboards_are_fresh():
    results = ROOT / "leaderboards" / "results"
    assert any(results.rglob("seed-*.json")), "leaderboards/results holds the committed result files"
    outcome = CliRunner().invoke(
        cli, ["leaderboard", "--results", str(results), "--out", str(ROOT / "leaderboards"), "--check"]
    )
    assert outcome.exit_code == 0, outcome.output


def test_readme_documents_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()[-1]
