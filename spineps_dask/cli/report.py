"""``spineps-dask report``: a cohort's summary tables and pictures as an HTML or Markdown page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from spineps_dask.cli._progress import console, print_error


class _Format(StrEnum):
    html = "html"
    md = "md"


def report(
    store: str = typer.Argument(..., help="Cohort store (folder or s3://... URL)."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for the page and PNGs."),
    fmt: _Format = typer.Option(_Format.html, "--format", "-f", help="html or md (Markdown)."),
    gallery: int = typer.Option(100, help="Most subject snapshots shown (0: none)."),
) -> None:
    """Write OUT/report.html (or .md) with figures/*.png and snapshots/*.png beside it.

    Status counts and time per phase, failed subjects with step and reason, metrics per
    structure (mean ± SD), biomarkers per level, and a gallery of subject snapshots. Images are
    linked relatively, so keep the folder together. Exit code 2 when STORE is not a cohort store.
    """
    from spineps_dask.errors import StoreError
    from spineps_dask.viz.report import write_report

    try:
        with console.status("writing report"):
            page = write_report(store, out, fmt=fmt.value, gallery_max=gallery)
    except StoreError as exc:
        print_error("cannot report", exc)
        raise typer.Exit(code=2) from exc
    # stdout: the page's path, verbatim for scripts (never wrapped, never read as markup);
    # status goes to stderr
    typer.echo(str(page))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
