"""Every hook is documented in docs/hooks.md and has tests named test_hook_<name>_..."""

import re
from pathlib import Path

import pytest

from msabench import hookspecs

ROOT = Path(__file__).parent.parent
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))


def test_there_are_six_hooks():
    assert HOOKS == [
        "register_commands",
        "register_datasets",
        "register_encoders",
        "register_fusions",
        "register_methods",
        "register_objectives",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    headings = re.findall(r"^## (\w+)\((?:register|cli)\)$", (ROOT / "docs" / "hooks.md").read_text(), re.MULTILINE)
    assert hook in headings


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_tests(hook):
    source = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"def test_hook_{hook}_\w+", source), f"no test_hook_{hook}_... test"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_says_what_to_register(hook):
    assert ("cli.command(" if hook == "register_commands" else "register(") in getattr(hookspecs, hook).__doc__
