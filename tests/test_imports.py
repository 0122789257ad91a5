"""The host's imports flow one way: each module imports only from the layers below it, function-level imports
included (only `if TYPE_CHECKING:` blocks are exempt), so there is no import cycle to hide."""

import ast
from pathlib import Path

import msabench

HOST = Path(msabench.__file__).parent

# Bottom to top; a module may import from any earlier layer.
LAYERS = [
    {"errors", "metrics", "hookspecs", "paths", "stats"},
    {"results", "protocol", "settings"},
    {"components", "decode", "splits", "cache", "plugins", "layers", "schema", "reproduce"},
    {"data", "features"},
    {"imagetext"},
    {"synthetic", "catalog"},
    {"train", "leaderboard"},
    {"inference", "testing", "plot", "sweep", "markup", "rerun"},
    {"robustness", "verify", "scaffold"},
    {"site"},
    {"cli"},
    {"__main__"},
]


def imports(path: Path) -> set[str]:
    """The msabench modules a file imports, wherever the import statement is, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "msabench":  # the package root: resolve each name to the module that defines it
                found |= {msabench._EXPORTS[alias.name] for alias in node.names if alias.name in msabench._EXPORTS}
            elif node.module.startswith("msabench."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("msabench.")}
    return found - {"core"}


def layer(module: str) -> int:
    return next(number for number, names in enumerate(LAYERS) if module in names)


def test_every_host_module_has_a_layer():
    modules = {path.stem for path in HOST.glob("*.py")} - {"__init__"}
    assert modules == set().union(*LAYERS) & modules and modules <= set().union(*LAYERS)


def test_imports_only_go_down_the_layers():
    wrong = []
    for path in sorted(HOST.glob("*.py")):
        if path.stem == "__init__":
            continue
        for target in sorted(imports(path)):
            if target != path.stem and layer(target) >= layer(path.stem):
                wrong.append(f"{path.stem} (layer {layer(path.stem)}) imports {target} (layer {layer(target)})")
    assert wrong == []


def test_the_package_root_imports_nothing_of_its_own_up_front():
    assert imports(HOST / "__init__.py") == set()
    assert set(msabench.__all__) == {"__version__", *msabench._EXPORTS}
    for name in msabench.__all__:
        assert getattr(msabench, name) is not None


def test_the_core_plugin_imports_only_the_public_api():
    for path in sorted((HOST / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module == "msabench" or not node.module.startswith("msabench"), (
                    f"{path.name}: {node.module}"
                )
