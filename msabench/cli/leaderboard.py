"""`msabench leaderboard`: Markdown pages from result files."""

from __future__ import annotations

import click

from msabench.cli.options import DATASETS, RESULTS


@click.command(name="leaderboard")
@RESULTS
@click.option(
    "--out",
    "out_dir",
    default="leaderboards",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for <dataset>.md files.",
)
@DATASETS
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a Markdown file is missing or stale.")
@click.option(
    "--charts/--no-charts",
    default=True,
    show_default=True,
    help="Draw each dataset's chart (<out>/charts/<dataset>.svg); a page embeds the charts that exist.",
)
@click.option(
    "--robustness", "with_robustness", is_flag=True, help="Add a robustness table from the reports beside the results."
)
def command(results_dir, out_dir, datasets, check, charts, with_robustness):
    """Render one Markdown leaderboard per dataset from result files (and print it)."""
    from msabench.cli import show_logs
    from msabench.store import render_pages, stale_pages

    show_logs(quiet=True)  # each invalid result file is a warning
    pages = render_pages(
        results_dir, out_dir, write=not check, datasets=datasets, charts=charts, robustness=with_robustness
    )
    if check:
        if stale := stale_pages(pages, out_dir, every=not datasets):
            raise click.ClickException(
                f"stale leaderboards: {', '.join(stale)}. "
                f"Regenerate with: msabench leaderboard --results {results_dir} --out {out_dir}"
            )
        click.echo(f"{len(pages)} leaderboards up to date")
        return
    for name, page in pages.items():
        click.echo(page)
        click.echo(f"wrote {out_dir}/{name}.md", err=True)
