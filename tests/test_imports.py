"""The host's imports flow one way: each module imports only from the layers below it, function-level imports
included (only `if TYPE_CHECKING:` blocks are exempt), so there is no import cycle to hide."""

import ast
from pathlib import Path

import msabench

HOST = Path(msabench.__file__).parent

# Bottom to top; a module may import from any earlier layer.
LAYERS = [
    {"errors", "metrics", "hookspecs", "paths", "stats"},
    {"results", "protocol", "settings", "options", "hparams", "corruptions"},
    {"components", "decode", "cache", "plugins", "layers", "integrity", "pickles", "schema", "command"},
    {"splits", "features", "mmsa", "runtime", "optim"},
    {"mult", "imagetext", "pretrained", "resume"},
    {"synthetic", "catalog"},
    {"train", "leaderboard", "formats"},
    {"inference", "testing", "plot", "trials", "markup", "rerun"},
    {"sweep", "robustness", "verify", "scaffold"},
    {"store", "site"},
    {"api", "catalogs", "workers"},
    {"boards"},
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
            if node.module == "msabench":  # the package root: a name it exports, or a module of the package
                for alias in node.names:
                    if alias.name in msabench._EXPORTS:
                        found.add(msabench._EXPORTS[alias.name])
                    elif (HOST / f"{alias.name}.py").is_file() or (HOST / alias.name).is_dir():
                        found.add(alias.name)
            elif node.module.startswith("msabench."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("msabench.")}
    return found


def layer(module: str) -> int:
    return next(number for number, names in enumerate(LAYERS) if module in names)


def host_modules() -> dict[Path, str]:
    """Every host source file and the module it counts as (the files of the `cli` package count as `cli`)."""
    files = {path: path.stem for path in HOST.glob("*.py") if path.stem != "__init__"}
    return files | {path: "cli" for path in (HOST / "cli").glob("*.py")}


def test_every_host_module_has_a_layer():
    modules = set(host_modules().values())
    assert modules <= set().union(*LAYERS), sorted(modules - set().union(*LAYERS))


def test_imports_only_go_down_the_layers():
    wrong = []
    for path, module in sorted(host_modules().items()):
        for target in sorted(imports(path)):
            if target != module and layer(target) >= layer(module):
                wrong.append(f"{path.name} ({module}, layer {layer(module)}) imports {target} (layer {layer(target)})")
    assert wrong == []


def test_the_package_root_imports_nothing_of_its_own_up_front():
    assert imports(HOST / "__init__.py") == set()
    assert set(msabench.__all__) == {"__version__", *msabench._EXPORTS}
    for name in msabench.__all__:
        assert getattr(msabench, name) is not None
