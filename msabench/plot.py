"""Charts from result files (`msabench plot`): training curves per run, a leaderboard chart per dataset and
protocol, and robustness curves. matplotlib's object API (no pyplot state; PNG through Agg), PNG and SVG.

Output is deterministic: the same inputs give the same bytes on the same matplotlib and FreeType. PNGs carry
no Software entry and SVGs no date or creator, and the SVG ids come from a fixed hash salt, so committed
charts only change when the results they draw do.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from msabench.leaderboard import summarize
from msabench.metrics import FAMILIES, HEADLINE, METRICS
from msabench.protocol import PROTOCOL
from msabench.results import RunResult, protect, write_atomic

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

FORMATS = ("png", "svg")
STYLE: dict[RcKeyType, Any] = {
    "svg.hashsalt": "msabench",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
}
# Okabe & Ito's colour-blind-safe palette.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
BEST, TIED, OTHER, REPORTED = "#0072B2", "#56B4E9", "#8C8C8C", "#D55E00"
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def save(figure: Figure, stem: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write `figure` as `<stem>.<format>` for each format (atomically, without metadata); returns the paths."""
    paths = []
    with mpl.rc_context(STYLE):
        for fmt in formats:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, metadata=METADATA.get(fmt))
            path = Path(f"{stem}.{fmt}")
            protect(path)
            write_atomic(path, buffer.getvalue())
            paths.append(path)
    return paths


def label(metric: str) -> str:
    """A metric as an axis or panel label: its name, its unit and its direction."""
    unit = " (%)" if METRICS[metric].percent else ""
    return f"{metric}{unit} {'↑' if METRICS[metric].higher_is_better else '↓'}"


def short(text: str, limit: int = 48) -> str:
    """A row name cut to `limit` characters (a variant can spell out a whole config), ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scaled(metric: str, value: float | None) -> float:
    if value is None:
        return math.nan
    return 100 * value if METRICS[metric].percent else value


# -- training curves ------------------------------------------------------------------------------


def training_curves(result: RunResult) -> Figure:
    """One run's history: train and validation loss, the validation headline metric (and the selection metric
    when the method selects on another), the per-term training losses, and any weights callbacks logged
    (history entries besides epoch/train/valid, e.g. DMMSA's ``lambda``). The selected epoch is marked."""
    history = result.history
    if not history:
        raise ValueError(f"{result.row} on {result.dataset}, seed {result.seed}: the result has no history to plot")
    epochs = [entry["epoch"] for entry in history]
    panels = _curve_panels(result)

    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(min(3.0 * len(panels), 12.0), 2.9), layout="constrained")
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        for axis, (title, ylabel, series) in zip(axes, panels, strict=True):
            for (name, values), color in zip(series.items(), COLORS * 4, strict=False):
                axis.plot(epochs, values, color=color, label=name, marker="o", markersize=2.5)
            axis.axvline(result.best_epoch, color="#444444", linestyle=":", linewidth=1.0)
            axis.set_title(title)
            axis.set_xlabel("epoch")
            axis.set_ylabel(ylabel)
            axis.xaxis.get_major_locator().set_params(integer=True)
            handles, labels = axis.get_legend_handles_labels()
            if axis is axes[0]:
                handles, labels = [*handles, _selected_line()], [*labels, f"selected epoch {result.best_epoch}"]
            if len(handles) > 1:  # below the panel, where it hides no curve
                axis.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2)
        figure.suptitle(f"{short(result.row, 80)} on {result.dataset}, seed {result.seed}", fontsize=10)
    return figure


Panel = tuple[str, str, dict[str, list[float]]]  # title, y label, the curves by name


def _curve_panels(result: RunResult) -> list[Panel]:
    """The panels of `training_curves`: loss, the validation headline metric, the selection metric (when another),
    the per-term training losses (when there are terms), and what callbacks logged."""
    history = result.history
    headline = HEADLINE[result.task["family"]]
    selection = result.method_info.get("key_metric")
    panels: list[Panel] = [
        (
            "Loss",
            "loss",
            {
                "train": [entry["train"].get("total", math.nan) for entry in history],
                "valid": [entry["valid"].get("loss", math.nan) for entry in history],
            },
        ),
        (f"Validation {headline}", label(headline), {headline: [_valid(e, headline) for e in history]}),
    ]
    if selection and selection != headline:
        panels.append((f"Validation {selection} (selects)", label(selection), {selection: _series(history, selection)}))
    terms = [key for key in history[0]["train"] if key != "total"]
    if terms:
        panels.append(
            ("Training loss terms", "loss", {term: [e["train"].get(term, math.nan) for e in history] for term in terms})
        )
    return panels + _logged_panels(history)


def _logged_panels(history: list[dict[str, Any]]) -> list[Panel]:
    """One panel per history entry besides epoch/train/valid (weights a callback logged, e.g. DMMSA's ``lambda``):
    a mapping gives one curve per key."""
    panels: list[Panel] = []
    for key in history[0]:
        if key in ("epoch", "train", "valid"):
            continue
        first = history[0][key]
        if isinstance(first, Mapping):
            series = {f"{key}[{name}]": [_number(e.get(key, {}).get(name)) for e in history] for name in first}
        else:
            series = {key: [_number(e.get(key)) for e in history]}
        panels.append((f"Logged: {key}", "value", series))
    return panels


def _valid(entry: dict[str, Any], metric: str) -> float:
    return scaled(metric, entry["valid"].get(metric))


def _series(history: list[dict[str, Any]], metric: str) -> list[float]:
    return [_valid(entry, metric) for entry in history]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _selected_line() -> Line2D:
    return Line2D([], [], color="#444444", linestyle=":", linewidth=1.0)


# -- leaderboard chart ----------------------------------------------------------------------------


def leaderboard_chart(dataset: str, results: list[RunResult]) -> Figure:
    """One panel per metric column for the results of one dataset and protocol: each row's seed mean with
    ± std error bars and its seeds as dots, coloured by the leaderboard's marks (best mean, not significantly
    different from it, other), and the paper's reported numbers as diamonds."""
    protocols = {r.protocol["id"] for r in results}
    if len(protocols) != 1:
        raise ValueError(f"a leaderboard chart draws one protocol; {dataset} results have {sorted(protocols)}")
    family = results[0].task["family"]
    columns = FAMILIES[family]
    ddof = results[0].protocol.get("ddof", 1)
    summary = summarize(results, columns, ddof)
    reported = _reported(dataset, summary)
    rows = summary.order
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.2, nrows * (0.45 + 0.24 * len(rows)) + 0.9), layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False, sharey=True)
        for index, column in enumerate(columns):
            axis = axes[index // ncols][index % ncols]
            for y, row in enumerate(rows):
                mean, std = summary.stats[row][column]
                mark = summary.marks[row].get(column)
                color = BEST if mark == "bold" else TIED if mark == "tied" else OTHER
                seeds = [scaled(column, v) for v in summary.values[row][column]]
                offsets = [(i - (len(seeds) - 1) / 2) * 0.09 for i in range(len(seeds))]
                axis.scatter(
                    seeds,
                    [y + o for o in offsets],
                    s=5,
                    color="#333333",
                    alpha=0.35,
                    linewidths=0,
                    zorder=2,
                    gid="seeds",
                )
                axis.errorbar(
                    scaled(column, mean),
                    y,
                    xerr=None if math.isnan(std) else scaled(column, std),
                    fmt="o",
                    color=color,
                    markersize=5,
                    capsize=2.5,
                    elinewidth=1.2,
                    zorder=3,
                )
                if column in reported.get(row, {}):
                    axis.scatter(reported[row][column], y, marker="D", s=22, color=REPORTED, zorder=4, gid="reported")
            axis.set_title(label(column))
            axis.grid(axis="y", visible=False)
            axis.set_yticks(range(len(rows)), [short(row, 32) for row in rows])
            axis.set_ylim(len(rows) - 0.5, -0.5)
        for index in range(len(columns), nrows * ncols):
            axes[index // ncols][index % ncols].set_visible(False)
        handles = [
            Line2D([], [], marker="o", linestyle="", color=BEST, label="best mean (bold)"),
            Line2D([], [], marker="o", linestyle="", color=TIED, label="not significantly different (≈)"),
            Line2D([], [], marker="o", linestyle="", color=OTHER, label="other (worse, or < 3 seeds)"),
            Line2D([], [], marker="o", linestyle="", color="#333333", alpha=0.35, markersize=3, label="one seed"),
        ]
        if reported:
            handles.append(Line2D([], [], marker="D", linestyle="", color=REPORTED, markersize=4, label="reported"))
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        figure.suptitle(
            f"{dataset} (protocol {results[0].protocol['id']}): test metrics, mean ± std over seeds (ddof={ddof})",
            fontsize=10,
        )
    return figure


def _reported(dataset: str, summary) -> dict[str, dict[str, float]]:
    """row -> column -> the paper's number, for rows running a method as registered (no variant)."""
    found: dict[str, dict[str, float]] = {}
    for row, group in summary.runs.items():
        if group[0].variant:
            continue
        for entry in group[0].method_info.get("reported", []):
            if entry["dataset"] == dataset:
                found.setdefault(row, {}).update(
                    {key: value for key, value in entry["metrics"].items() if key in summary.columns}
                )
    return found


def chart_name(dataset: str, protocol_id: str) -> str:
    """`<dataset>.svg` under the default protocol, `<dataset>.<protocol id>.svg` under another."""
    return f"{dataset}.svg" if protocol_id == PROTOCOL.id else f"{dataset}.{_safe(protocol_id)}.svg"


def leaderboard_charts(
    results: Iterable[RunResult], folder: str | Path, *, draw: bool = True, only: Sequence[str] = ()
) -> dict[str, dict[str, str]]:
    """dataset -> protocol id -> `charts/<chart_name>` for the leaderboard charts in `folder` (the pages' `charts/`),
    drawn there as SVG first when `draw`. Only charts that exist are listed, so a page embeds no missing image and
    stays a function of files (what `msabench leaderboard --check` compares)."""
    folder = Path(folder)
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        if not only or result.dataset in only:
            groups.setdefault((result.dataset, result.protocol["id"]), []).append(result)
    links: dict[str, dict[str, str]] = {}
    for (dataset, protocol_id), group in sorted(groups.items()):
        name = chart_name(dataset, protocol_id)
        if draw:
            save(leaderboard_chart(dataset, group), folder / name.removesuffix(".svg"), ("svg",))
        if (folder / name).is_file():
            links.setdefault(dataset, {})[protocol_id] = f"{folder.name}/{name}"
    return links


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=+," else "_" for c in text)


# -- robustness -----------------------------------------------------------------------------------


def robustness_curves(report: Mapping[str, Any]) -> Figure:
    """A robustness report (`msabench.robustness`) as curves: the headline metric against the corruption level,
    one panel per corrupted input and one for all together, on a shared scale (the late-fusion reference dashed
    when there is one), and the metric with each modality or pair missing, drawn from the clean score; for
    regression a second row shows MAE."""
    metric, secondary = report["metric"], report.get("secondary")
    metrics = [metric, *([secondary] if secondary else [])]
    curves = report["curves"]
    reference = (report.get("reference") or {}).get("curves", {})
    missing = report.get("missing") or {}
    summary = report["summary"]
    effective = summary.get("effective") or {}
    ncols = len(curves) + (1 if missing else 0)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(min(2.6 * ncols, 13.0), 2.5 * len(metrics) + 0.6), layout="constrained")
        axes = figure.subplots(len(metrics), ncols, squeeze=False)
        for r, shown in enumerate(metrics):
            for c, (name, curve) in enumerate(curves.items()):
                axis = axes[r][c]
                if c:
                    axis.sharey(axes[r][0])
                values = [scaled(shown, m.get(shown)) for m in curve["metrics"]]
                axis.plot(
                    curve["levels"], values, color=COLORS[0], marker="o", markersize=3, label=short(report["row"])
                )
                if name in reference:
                    axis.plot(
                        reference[name]["levels"],
                        [scaled(shown, m.get(shown)) for m in reference[name]["metrics"]],
                        color=OTHER,
                        linestyle="--",
                        marker="s",
                        markersize=2.5,
                        label=f"{short(report['reference']['row'])} (reference)",
                    )
                title = "all modalities" if name == "all" else name
                if r == 0:
                    title += f"\nRR {summary['relative'][name]:.3f}"
                    if effective.get(name) is not None:
                        title += f", ER {effective[name]:+.3f}"
                axis.set_title(title)
                axis.set_xlabel("corruption level p")
                axis.ticklabel_format(axis="y", useOffset=False)
                if c == 0:
                    axis.set_ylabel(label(shown))
            if missing:
                axis = axes[r][-1]
                names = list(missing)
                clean = scaled(shown, report["clean"].get(shown))
                values = [scaled(shown, missing[n].get(shown)) for n in names]
                axis.hlines(range(len(names)), clean, values, color=COLORS[1], linewidth=1.5)
                axis.scatter(values, range(len(names)), color=COLORS[1], s=18, zorder=3)
                axis.axvline(clean, color="#444444", linestyle=":", linewidth=1.0)
                axis.set_yticks(range(len(names)), [f"no {n}" for n in names])
                axis.set_ylim(len(names) - 0.5, -0.5)
                axis.grid(axis="y", visible=False)
                axis.ticklabel_format(axis="x", useOffset=False)
                axis.set_title("missing modalities" + ("\n(dotted: clean)" if r == 0 else ""))
                axis.set_xlabel(label(shown))
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles=handles, labels=labels, loc="outside lower center", ncols=max(1, len(handles)))
        figure.suptitle(
            f"Robustness of {short(report['row'], 80)} on {report['dataset']}, seed {report['seed']} (test split, "
            f"{report['test_samples']} samples"
            + (f"; {report['corruptions']} corruptions)" if report.get("corruptions") else ")"),
            fontsize=10,
        )
    return figure


def plot_results(
    results: Iterable[tuple[Path, RunResult]],
    out: str | os.PathLike[str],
    *,
    kinds: Sequence[str] = ("curves", "leaderboard", "robustness"),
    formats: Sequence[str] = FORMATS,
    root: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Draw `kinds` for (result path, result) pairs under `out`: curves at `<out>/<path relative to root>` with
    `.curves.<fmt>`, robustness (from each run's `.robustness.json`) with `.robustness.<fmt>`, and one leaderboard
    chart per dataset and protocol as `<out>/<chart_name>` (without the .svg, for each format)."""
    out = Path(out)
    pairs = list(results)
    written: list[Path] = []
    for path, result in pairs:
        relative = path.relative_to(root) if root is not None else Path(path.name)
        stem = out / relative.parent / relative.name.removesuffix(".json")
        if "curves" in kinds and result.history:
            written += save(training_curves(result), f"{stem}.curves", formats)
        report_path = path.with_name(path.name.removesuffix(".json") + ".robustness.json")
        if "robustness" in kinds and report_path.is_file():
            written += save(robustness_curves(json.loads(report_path.read_text())), f"{stem}.robustness", formats)
    if "leaderboard" in kinds:
        groups: dict[tuple[str, str], list[RunResult]] = {}
        for _, result in pairs:
            groups.setdefault((result.dataset, result.protocol["id"]), []).append(result)
        for (dataset, protocol_id), group in sorted(groups.items()):
            name = chart_name(dataset, protocol_id).removesuffix(".svg")
            written += save(leaderboard_chart(dataset, group), out / name, formats)
    return written
