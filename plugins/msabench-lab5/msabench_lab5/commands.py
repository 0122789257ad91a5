"""`msabench predict`: label Lab5's test_without_label.txt with a trained run, in Lab5's guid,tag format. A command
only datasets with unlabelled inputs need, so it lives here, added through the `register_commands` hook."""

from __future__ import annotations

import click


def add(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--run",
        "run_path",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="A result JSON (with its checkpoint .pt beside it) or a checkpoint .pt.",
    )
    @click.option("--dataset", "-d", help="Dataset id whose unlabelled inputs to label. [default: the run's dataset]")
    @click.option(
        "--data-root",
        type=click.Path(file_okay=False),
        help="[default: $MSABENCH_DATA or ~/.local/share/msabench/data]",
    )
    @click.option(
        "--data-option",
        "data_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="A dataset option, e.g. skip_unreadable=true (unreadable samples are then written as null).",
    )
    @click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False),
        help="Where the predictions go, in the dataset's own format (Lab5: guid,tag); never a result or checkpoint.",
    )
    @click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
    def predict(run_path, dataset, data_root, data_options, out, device):
        """Label a dataset's unlabelled inputs (Lab5: test_without_label.txt) with a trained run's checkpoint."""
        import msabench

        options = {}
        for option in data_options:
            key, sep, value = option.partition("=")
            if not sep or not key.strip() or key.strip() in options:
                raise click.BadParameter(
                    f"expected KEY=VALUE, each key once; got {option!r}", param_hint="--data-option"
                )
            options[key.strip()] = value.strip()
        found = msabench.predict(
            run_path, out, dataset=dataset, data_root=data_root, data_options=options, device=device
        )
        click.echo(
            f"wrote {len(found.ids)} predictions of {found.method} (seed {found.seed}) to {out}"
            + (f"; {found.skipped} unreadable samples not predicted" if found.skipped else "")
            + f"; evaluation batch size {found.batch_size}",
            err=True,
        )
