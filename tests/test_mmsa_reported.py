"""Every MMSA number an installed plugin registers is the row of MMSA's results/result-stat.md at thuiar/MMSA
698bae0 (2023-12-27, after its 2021 F1 fixes), copied in tests/fixtures; the source string names that commit.

With no plugin registering MMSA numbers (every plugin folder deleted) there is nothing to check."""

import re
from pathlib import Path

import pytest

from msabench import Catalog, get_plugin_manager, mmsa_reported

FIXTURE = Path(__file__).parent / "fixtures" / "mmsa-result-stat-698bae0.md"
SOURCE = "MMSA results/result-stat.md"
SECTIONS = {"mosi": "MOSI", "mosi-aligned": "MOSI", "mosei": "MOSEI", "mosei-aligned": "MOSEI", "ch-sims": "SIMS"}
SECTIONS["ch-sims-v2"] = "SIMSv2"
ROWS = {"mult-causal": "mult"}  # a method that carries another method's row (MMSA runs MulT with its causal mask)


def tables() -> dict[str, dict[str, tuple[list[float], str]]]:
    """section -> model -> (its numbers in the table's column order, its data setting)."""
    found: dict[str, dict[str, tuple[list[float], str]]] = {}
    section = None
    for line in FIXTURE.read_text().splitlines():
        if match := re.fullmatch(r"- (\w+)", line.strip()):
            section = match.group(1)
            found[section] = {}
        elif section and line.startswith("|") and "Model" not in line and ":--" not in line:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            found[section][cells[0]] = ([float(cell) for cell in cells[1:-1]], cells[-1])
    return found


def registered():
    catalog = Catalog.from_plugins(get_plugin_manager())
    for name in catalog.methods:
        method = catalog.methods[name]
        for reported in method.reported:
            if reported.source.startswith(SOURCE):
                yield method, reported


def test_the_fixture_holds_mmsas_regression_tables():
    found = tables()
    assert {section: len(rows) for section, rows in found.items()} == {
        "MOSI": 11,
        "MOSEI": 11,
        "SIMS": 13,
        "SIMSv2": 13,
    }
    assert found["MOSI"]["self_mm"] == ([83.44, 83.36, 85.46, 85.43, 53.47, 46.67, 70.80, 79.63], "Unaligned")
    assert found["SIMS"]["ef_lstm"][0] == [69.37, 54.27, 21.23, 56.82, 59.07, 5.45]


def test_every_registered_mmsa_number_is_the_tables_at_698bae0():
    rows = list(registered())
    if not rows:
        pytest.skip("no installed plugin registers MMSA's numbers")
    found = tables()
    for method, reported in rows:
        where = f"{method.name} on {reported.dataset}"
        assert "thuiar/MMSA@698bae0" in reported.source, f"{where}: the source must name the commit"
        row = ROWS.get(method.name, method.name.replace("-", "_"))
        values, setting = found[SECTIONS[reported.dataset]][row]
        layout = "sims" if reported.dataset.startswith("ch-sims") else "mosi"
        assert dict(reported.metrics) == mmsa_reported(layout, values), where  # every column, nothing else
        if layout == "mosi":  # MMSA's aligned rows belong to the word-aligned datasets, and only they
            assert reported.dataset.endswith("-aligned") == (setting == "Aligned"), f"{where}: {setting}"
