"""HTML pieces of the leaderboard site (`msabench.site`): the page frame, tables that sort with the site's script
and read without it, definition lists and links. Every text is escaped here or by the caller; nothing refers to a
network address."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from msabench.leaderboard import TIED
from msabench.metrics import METRICS

Cell = tuple[str, Any]  # (html, sort value: a number, a text, or None for undefined)
Header = tuple[str, str, str]  # (html, css class, the direction a first sort takes: "ascending" or "descending")


def page(title: str, body: Sequence[str], depth: int, crumbs: Sequence[tuple[str, str | None]], footer: str) -> str:
    """A whole page: `depth` folders below the site's root (links in `crumbs` are relative to the root)."""
    up = "../" * depth
    trail = "".join(
        f'<li><a href="{up}{link}">{escape(text)}</a></li>' if link else f'<li aria-current="page">{escape(text)}</li>'
        for text, link in crumbs
    )
    content = "\n".join(part for part in body if part)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{up}assets/style.css">\n'
        f'<script src="{up}assets/sort.js" defer></script>\n'
        "</head>\n<body>\n"
        '<a class="skip" href="#main">Skip to the content</a>\n'
        f'<header><nav aria-label="Breadcrumb"><ol>{trail}</ol></nav></header>\n'
        f'<main id="main">\n{content}\n</main>\n'
        f"<footer>{footer}</footer>\n</body>\n</html>\n"
    )


def table(
    headers: Sequence[Header],
    rows: Sequence[Sequence[Cell]],
    caption: str,
    name: str,
    foot: Sequence[str] = (),
    *,
    sortable: bool = True,
    wide: bool = False,
) -> str:
    """A table in a keyboard-scrollable region; with `sortable`, its first cells are row headers and the site's
    script makes each column header a sort button. `wide` spans the page."""
    head = "".join(f'<th scope="col"{_class(css)} data-order="{order}">{text}</th>' for text, css, order in headers)
    lines = []
    for row in rows:
        cells = []
        for index, (html, value) in enumerate(row):
            tag = "th" if index == 0 and sortable else "td"
            scope = ' scope="row"' if tag == "th" else ""
            cells.append(f'<{tag}{scope}{_class(headers[index][1])} data-sort="{_sort(value)}">{html}</{tag}>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    footer = f"<tfoot><tr>{''.join(f'<td>{cell}</td>' for cell in foot)}</tr></tfoot>" if foot else ""
    classes = " ".join(css for css, on in (("sortable", sortable), ("wide", wide)) if on)
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{escape(caption, quote=True)}">'
        f'<table{_class(classes)} id="{name}"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(lines) + f"\n</tbody>{footer}</table></div>"
    )


def facts(items: Sequence[tuple[str, str]]) -> str:
    """A definition list of (name, html) pairs."""
    return '<dl class="facts">' + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items) + "</dl>"


def stat(text: str, mark: str | None = None) -> str:
    """A leaderboard cell (`msabench.leaderboard.format_value`: mean, ± std) with its mark: bold for the best
    ("bold"), ≈ for not significantly different from it ("tied"). The std is set smaller, under the mean."""
    mean, sep, std = text.partition(" ± ")
    tied = (
        f' <span class="tied" title="not significantly different from the best">{TIED}</span>' if mark == "tied" else ""
    )
    html = escape(mean) + (f' <span class="std">± {escape(std)}{tied}</span>' if sep else tied)
    return f'<strong class="best">{html}</strong>' if mark == "bold" else html


def metric_header(column: str) -> Header:
    """A metric column's header: its name and direction; a first sort puts the best first."""
    better = METRICS[column].higher_is_better
    return f"{escape(column)} {'↑' if better else '↓'}", "", "descending" if better else "ascending"


def link(html: str, *parts: str) -> str:
    return f'<a href="{href(*parts)}">{html}</a>'


def href(*parts: str) -> str:
    """A relative link from path parts, each percent-encoded (``+``, ``=`` and ``,`` of protocol ids kept)."""
    return "/".join(part if part == ".." else quote(part, safe="+,=@-_.~") for part in parts)


def external(html: str, url: str) -> str:
    """An ordinary link to a page elsewhere (a paper), which the site never loads by itself."""
    return f'<a href="{escape(url, quote=True)}" rel="noopener">{html}</a>' if url else html


def code_spans(text: str) -> str:
    """Markdown `code` spans as <code>, the rest escaped."""
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", escape(text))


def safe(text: str) -> str:
    """A file-name-safe form of a name that comes from data (a custom dataset's)."""
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text) or "_"


def _sort(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(float(value))
    return escape(str(value).lower(), quote=True)


def _class(css: str) -> str:
    return f' class="{css}"' if css else ""
