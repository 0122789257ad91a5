"""The docs cannot go stale: the generated reference pages match the code, and every `msabench` command the README,
docs/ and the plugins' READMEs show parses against the real command line, with names the catalog knows."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from msabench.api import load_catalog
from msabench.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "plugins").glob("*/README.md"),
        ROOT / "bench" / "README.md",
    ]
)
FENCE = re.compile(r"^```(bash|sh|shell|console)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Names a page makes before using them (the plugin `msabench new-plugin` writes).
MADE_BY_THE_DOCS = {"demo-fusion"}


def documented_commands():
    """(page, line, argv) for every `msabench ...` (or `python -m msabench ...`) in a shell block."""
    for page in PAGES:
        if not page.is_file():
            continue
        text = page.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            first = text[: block.start(2)].count("\n") + 1
            joined = block.group(2).replace("\\\n", " ")
            for offset, line in enumerate(joined.splitlines()):
                words = _command(line.strip().removeprefix("$ "))
                if words is not None:
                    yield page.relative_to(ROOT).as_posix(), first + offset, words


def _command(line: str) -> list[str] | None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    for stop in ("|", "&&", ";", ">", "2>", "||", "&"):
        if stop in words:
            words = words[: words.index(stop)]
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value msabench ...
        words = words[1:]
    if words[:1] and words[0].endswith("/msabench") or words[:1] == ["msabench"]:
        return words[1:]
    if len(words) >= 3 and words[0].endswith("python") and words[1:3] == ["-m", "msabench"]:
        return words[3:]
    if len(words) >= 3 and words[0].endswith("python3") and words[1:3] == ["-m", "msabench"]:
        return words[3:]
    return None


def parse(argv: list[str]) -> click.Context:
    """Parse argv the way `msabench` would, down to the leaf command, without running anything."""
    context = cli.make_context("msabench", list(argv))
    command: click.Command = cli
    while isinstance(command, click.Group):
        rest = [*context._protected_args, *context.args]  # what the group left for its subcommand
        if not rest:
            return context
        name, command, rest = command.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)
    return context


COMMANDS = list(documented_commands())


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_the_docs_show_commands():
    pages = {page for page, _, _ in COMMANDS}
    assert "README.md" in pages
    assert len(COMMANDS) >= 20, COMMANDS


@pytest.mark.parametrize(("page", "line", "argv"), COMMANDS, ids=[f"{p}:{n}" for p, n, _ in COMMANDS])
def test_every_documented_command_parses(page, line, argv, catalog):
    try:
        context = parse(argv)
    except click.exceptions.Exit as done:  # --help and --version
        assert done.exit_code == 0
        return
    except click.BadParameter as error:
        if isinstance(error.param and error.param.type, click.Path) and "does not exist" in error.format_message():
            return  # a file the reader makes first (a result, a data folder): the options parsed
        pytest.fail(f"{page}:{line}: msabench {shlex.join(argv)}: {error.format_message()}")
    except click.UsageError as error:
        pytest.fail(f"{page}:{line}: msabench {shlex.join(argv)}: {error.format_message()}")
    for key, kind in (("method", "methods"), ("dataset", "datasets")):
        value = context.params.get(key)
        names = value if isinstance(value, tuple) else (value,)
        for name in (n for n in names if isinstance(n, str)):
            assert name in MADE_BY_THE_DOCS or name in getattr(catalog, kind), (
                f"{page}:{line}: {key} {name!r} is not installed"
            )


def test_the_reference_pages_are_fresh():
    outcome = CliRunner().invoke(cli, ["docs", "--check", "--out", str(ROOT / "docs" / "reference")])
    assert outcome.exit_code == 0, outcome.output


def test_a_stale_reference_page_fails_the_check(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["docs", "--out", str(tmp_path)]).exit_code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"cli.md", "datasets.md", "methods.md"}
    assert runner.invoke(cli, ["docs", "--check", "--out", str(tmp_path)]).exit_code == 0
    page = tmp_path / "methods.md"
    page.write_text(page.read_text().replace("tfn", "tfn-renamed", 1))
    outcome = runner.invoke(cli, ["docs", "--check", "--out", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "methods.md" in outcome.output and "msabench docs" in outcome.output


def test_a_renamed_option_fails_the_parse():
    with pytest.raises(click.UsageError, match="--no-such-option"):
        parse(["run", "--method", "tfn", "--dataset", "synthetic-mosi", "--no-such-option"])
    with pytest.raises(click.UsageError, match="No such command"):
        parse(["no-such-command"])
    assert parse(["data", "info", "mosi"]).info_name == "info"


def test_the_catalogs_list_every_installed_name(tmp_path, catalog):
    assert CliRunner().invoke(cli, ["docs", "--out", str(tmp_path)]).exit_code == 0
    methods = (tmp_path / "methods.md").read_text()
    datasets = (tmp_path / "datasets.md").read_text()
    assert all(f"| `{name}` " in methods for name in catalog.methods)
    assert all(f"## {name}\n" in datasets for name in catalog.datasets)
    tfn = next(line for line in methods.splitlines() if line.startswith("| `tfn` "))
    assert "Zadeh et al., EMNLP 2017" in tfn and "tensor-fusion" in tfn and "mosi: MMSA" in tfn
    assert "`<data root>/MVSA_Single/labelResultAll.txt`" in datasets
    assert "`<data root>/MOSI/Processed/unaligned_50.pkl`" in datasets
