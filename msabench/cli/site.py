"""`msabench site`: the leaderboards as a static site (no server, nothing loaded from the network)."""

from __future__ import annotations

import click

from msabench.cli.options import RESULTS


@click.command(name="site")
@RESULTS
@click.option(
    "--out",
    "out_dir",
    default="site",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the site goes (replaced whole; refused when it holds anything but an earlier rendering).",
)
@click.option("--title", default="msabench leaderboards", show_default=True, help="The site's title.")
def command(results_dir, out_dir, title):
    """Render every dataset's leaderboard, each method and each run as static HTML from result files."""
    from msabench.site import render_site

    written = render_site(results_dir, out_dir, title=title)
    click.echo(f"wrote {len(written)} files; open {out_dir}/index.html", err=True)
