"""The leaderboard site in a real browser: Debian's Chromium, driven by Playwright (no browser download), opens the
site from disk (file://). Every page loads with no console error and no request off the disk, every link between
pages resolves, sorting a column reorders the rows (by mouse and by keyboard), the tables read without JavaScript,
and screenshots are saved.

`make site-test` runs this on the committed leaderboards (MSABENCH_SITE=build/site, screenshots in
build/site-screenshots); otherwise it renders a small results folder (tests/site_fixture.py) itself. Skipped, saying
why, where Chromium or Playwright is missing."""

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from msabench.site import render_site
from site_fixture import results_for_site

CHROMIUM = os.environ.get("MSABENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As root and on a closed network: no sandbox, no GPU, and none of Chromium's own connections.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (or set MSABENCH_CHROMIUM) to run the "
        "site's browser test",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]' to run the site's browser test"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if given := os.environ.get("MSABENCH_SITE"):
        return Path(given).resolve()
    root = tmp_path_factory.mktemp("browser")
    render_site(results_for_site(root / "results"), root / "site")
    return root / "site"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MSABENCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as driver:
        yield driver


def open_browser(playwright, profile: str, javascript: bool = True):
    """Chromium with a fresh profile (its --user-data-dir)."""
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=FLAGS,
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
    )


@pytest.fixture(scope="module")
def browser(playwright):
    with tempfile.TemporaryDirectory(prefix="msabench-chromium-") as profile:
        context = open_browser(playwright, profile)
        yield context
        context.close()


class Watch:
    """What a page did: console errors, uncaught exceptions, requests that left the disk or failed."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith(("file:", "data:"))
                else self.problems.append(f"network request: {request.url}")
            ),
        )


def test_every_page_loads_cleanly_and_every_link_between_pages_resolves(browser, site, shots):
    page = browser.new_page()
    watch = Watch(page)
    start = (site / "index.html").as_uri()
    queue, seen, checked = [start], {start}, 0
    while queue:
        url = queue.pop(0)
        page.goto(url)
        where = unquote(urlparse(url).path)
        assert page.title(), f"{where} has no title"
        broken = page.eval_on_selector_all("img", "images => images.filter(i => !i.naturalWidth).map(i => i.src)")
        assert broken == [], f"{where}: images that did not load: {broken}"
        for target in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            parsed = urlparse(target)
            if parsed.scheme != "file":
                assert parsed.scheme in ("http", "https"), f"{where}: link {target}"
                continue  # an ordinary link to a paper: never followed, never loaded
            path = Path(unquote(parsed.path))
            assert path.is_file(), f"{where}: the link to {path} does not resolve"
            bare = target.split("#")[0]
            if path.suffix == ".html" and bare not in seen:
                seen.add(bare)
                queue.append(bare)
        checked += 1
    assert watch.problems == []
    assert checked == len(list(site.rglob("*.html"))), "a page no link reaches"
    page.goto(start)
    page.screenshot(path=str(shots / "index.png"), full_page=True)
    page.close()


def first_board(site: Path) -> Path:
    """The board with the most rows (the fixture's: synthetic-mosi-aligned; the committed site's: synthetic-sims)."""
    boards = sorted(site.glob("*/*/index.html"), key=lambda p: (-p.read_text().count('<th scope="row"'), str(p)))
    return boards[0]


def column_values(page, column: int) -> list[float]:
    cells = page.eval_on_selector_all(
        "#board tbody tr", f"rows => rows.map(r => r.cells[{column}].getAttribute('data-sort'))"
    )
    # A row without the metric (a method that reports only some) has an empty cell: always sorted last.
    filled = [value for value in cells if value]
    assert cells == filled + [""] * (len(cells) - len(filled)), cells
    return [float(value) for value in filled]


def test_sorting_a_column_reorders_the_rows_by_mouse_and_by_keyboard(browser, site, shots):
    page = browser.new_page()
    watch = Watch(page)
    board = first_board(site)
    page.goto(board.as_uri())
    headers = page.eval_on_selector_all("#board thead th", "cells => cells.map(c => c.textContent.trim())")
    ranked = page.eval_on_selector_all("#board tbody th", "cells => cells.map(c => c.getAttribute('data-sort'))")
    assert len(ranked) >= 3 and headers[0] == "Method"
    mae = next((i for i, h in enumerate(headers) if h.startswith("MAE")), None)
    column = mae if mae is not None else 1
    first_direction = "ascending" if mae is not None else "descending"  # the better direction first
    button = page.locator("#board thead th").nth(column).locator("button")
    button.click()
    values = column_values(page, column)
    assert values == sorted(values, reverse=first_direction == "descending")
    assert page.locator("#board thead th").nth(column).get_attribute("aria-sort") == first_direction
    page.screenshot(path=str(shots / "board-sorted.png"), full_page=True)
    button.click()
    values = column_values(page, column)
    assert values == sorted(values, reverse=first_direction == "ascending")
    # the keyboard: the Method header's button takes the focus, Enter and Space sort by name
    page.locator("#board thead th").nth(0).locator("button").focus()
    page.keyboard.press("Enter")
    names = page.eval_on_selector_all("#board tbody th", "cells => cells.map(c => c.getAttribute('data-sort'))")
    assert names == sorted(ranked)
    assert page.locator("#board thead th").nth(0).get_attribute("aria-sort") == "ascending"
    assert page.locator(".sort-status").first.text_content() == "Sorted by Method, ascending."
    page.keyboard.press("Space")
    names = page.eval_on_selector_all("#board tbody th", "cells => cells.map(c => c.getAttribute('data-sort'))")
    assert names == sorted(ranked, reverse=True)
    assert watch.problems == []
    page.close()


def test_pages_read_without_javascript(playwright, site, shots):
    board = first_board(site)
    with tempfile.TemporaryDirectory(prefix="msabench-chromium-") as profile:
        context = open_browser(playwright, profile, javascript=False)
        page = context.new_page()
        page.goto(board.as_uri())
        assert page.locator("#board thead button").count() == 0  # sorting needs the script; reading does not
        rows = page.eval_on_selector_all("#board tbody tr", "rows => rows.length")
        assert rows >= 3 and page.locator("#board tbody tr").first.is_visible()
        page.screenshot(path=str(shots / "board-without-javascript.png"), full_page=True)
        context.close()


def test_screenshots_of_a_method_and_a_run(browser, site, shots):
    board = first_board(site)
    method = sorted(board.parent.glob("*/index.html"))[0]
    run = sorted(method.parent.glob("seed-*.html"))[0]
    page = browser.new_page()
    watch = Watch(page)
    for name, path in (("board", board), ("method", method), ("run", run)):
        page.goto(path.as_uri())
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert watch.problems == []
    assert {p.name for p in shots.glob("*.png")} >= {"board.png", "method.png", "run.png"}
    page.close()
