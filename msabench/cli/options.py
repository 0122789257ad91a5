"""What several commands share: their flags, and turning ``KEY=VALUE`` text into values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from msabench.errors import RequestError


def assignments(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs; a key given twice is an error (which value was meant?)."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        key, item = key.strip(), item.strip()
        if not sep or not key or not item:
            raise RequestError(f"{flag} {value}: expected KEY=VALUE.")
        if key in pairs:
            raise RequestError(f"{flag} {key} is given twice ({pairs[key]} and {item}); give it once.")
        pairs[key] = item
    return pairs


def json_or_text(value: str) -> Any:
    """A JSON value (``1e-4``, ``true``, ``[64, 32]``), or the text itself (a path, a name)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def values(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    return {key: json_or_text(value) for key, value in assignments(pairs, flag).items()}


def seeds(text: str | None) -> tuple[int, ...] | None:
    """Comma-separated seeds, or None (the protocol's); the plan step checks their range."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise RequestError(f"--seeds {text}: expected comma-separated whole numbers such as 1111,1112.") from None


def request(flags: dict[str, Any], **extra: Any):
    """A `msabench.api.Request` from the shared run flags."""
    from msabench.api import Request

    return Request(
        method=flags["method"],
        dataset=flags["dataset"],
        seeds=seeds(flags["seeds"]),
        sets=values(flags["sets"], "--set"),
        data_options=values(flags["data_options"], "--data-option"),
        encoders=assignments(flags["encoders"], "--encoder"),
        objective=flags["objective"],
        max_epochs=flags["max_epochs"],
        patience=flags["patience"],
        precision=flags["precision"],
        device=flags["device"],
        threads=flags["threads"],
        data_root=flags["data_root"],
        verify=not flags["no_verify"],
        results=flags["results_dir"],
        leaderboards=flags["boards_dir"],
        overwrite=flags["overwrite"],
        checkpoints=flags["checkpoints"],
        tuned=flags.get("tuned"),
        **extra,
    )


def load_catalog():
    """Every installed plugin's components; each plugin problem is printed once, as a warning."""
    from msabench.catalog import Catalog
    from msabench.plugins import get_plugin_manager

    catalog = Catalog.from_plugins(get_plugin_manager())
    for problem in catalog.problems:
        click.echo(f"Warning: {problem.message}", err=True)
    return catalog


DATA_ROOT = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    help="Folder with the datasets' files. [default: $MSABENCH_DATA or ~/.local/share/msabench/data]",
)
RESULTS = click.option(
    "--results",
    "results_dir",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of result JSON files.",
)
DEVICE = click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:1")
DATASETS = click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")

# The flags of `msabench run` that say what to train; `msabench sweep` takes them too.
RUN_FLAGS = [
    click.option("--method", "-m", required=True, help="Method id (see `msabench list methods`)."),
    click.option("--dataset", "-d", required=True, help="Dataset id (see `msabench list datasets`)."),
    click.option("--seeds", help="Comma-separated seeds. [default: the protocol's 1111-1115]"),
    DATA_ROOT,
    click.option(
        "--no-verify",
        is_flag=True,
        help="Use data files whose SHA-256 does not match the published one (results are marked unverified).",
    ),
    click.option(
        "--results",
        "results_dir",
        default="results",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Where result JSON files go.",
    ),
    click.option(
        "--leaderboards",
        "boards_dir",
        type=click.Path(file_okay=False),
        help="Where the dataset's Markdown page is rendered. [default: ./leaderboards, unless its page there was "
        "rendered from other results: then beside the results, as <results>/<dataset>.md]",
    ),
    DEVICE,
    click.option(
        "--threads",
        type=int,
        help="CPU threads for torch. [default: 1, whatever the machine: the count changes the numbers]",
    ),
    click.option(
        "--precision",
        type=click.Choice(["fp32", "bf16", "fp16"]),
        default="fp32",
        show_default=True,
        help="Forward passes through torch.autocast in bf16 or fp16 (fp16: CUDA only, with a gradient scaler); "
        "part of the protocol id.",
    ),
    click.option(
        "--max-epochs",
        type=int,
        help="Cap epochs at N instead of the protocol's 100 (another protocol id: rows are ranked apart).",
    ),
    click.option(
        "--patience",
        type=int,
        help="Stop after N epochs without a better validation value instead of the protocol's 8 (another protocol "
        "id). With --patience N --max-epochs N every run trains N epochs, a paper's fixed schedule; selection stays "
        "on validation.",
    ),
    click.option(
        "--encoder",
        "encoders",
        multiple=True,
        metavar="MODALITY=NAME",
        help="Swap an encoder, e.g. text=lstm-text (repeatable).",
    ),
    click.option("--objective", help="Swap the objective, e.g. l1."),
    click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="[STAGE:]SECTION.KEY=VALUE",
        help="Override a hyper-parameter, e.g. train.lr=1e-4 (JSON values; repeatable); STAGE:SECTION.KEY sets one "
        "of a multi-stage method's earlier runs, e.g. lab5-bert:train.lr=3e-5.",
    ),
    click.option(
        "--data-option",
        "data_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="A dataset option, e.g. skip_unreadable=true, split_file=PATH or (any dataset) train_fraction=0.1 "
        "(repeatable; part of the row's variant).",
    ),
    click.option(
        "--overwrite",
        is_flag=True,
        help="Retrain seeds whose result exists, stage runs included; the old results stay until the new ones are "
        "saved.",
    ),
    click.option(
        "--progress/--no-progress",
        default=True,
        show_default=True,
        help="Show a progress bar per epoch (on a terminal).",
    ),
    click.option(
        "--checkpoints/--no-checkpoints",
        default=True,
        show_default=True,
        help="Save each seed's selected weights beside its result (stage runs always keep theirs).",
    ),
    click.option(
        "--quiet", "-q", is_flag=True, help="Print only each unit's outcome (trained, skipped), warnings and errors."
    ),
]


def run_flags(command: Callable) -> Callable:
    """Decorate a command with `RUN_FLAGS`."""
    for option in reversed(RUN_FLAGS):
        command = option(command)
    return command
