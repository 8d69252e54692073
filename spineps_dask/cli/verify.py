"""``spineps-dask verify``: a whole store against the checksums written with its volumes."""

from __future__ import annotations

from typing import Annotated

import typer

from spineps_dask.cli._progress import print_error


def register(app: typer.Typer) -> None:
    """Add ``verify`` to the ``spineps-dask`` app."""
    app.command("verify")(verify_command)


def verify_command(
    store: Annotated[str, typer.Argument(help="Cohort store: a folder or an fsspec URL.")],
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Compare stored chunk sizes only (deleted, truncated chunks)."
        ),
    ] = False,
    mark: Annotated[
        bool,
        typer.Option(
            "--mark/--no-mark",
            help="Mark damaged subjects failed in the manifest, so the next run redoes them.",
        ),
    ] = True,
) -> None:
    """Check every scan, mask and reference mask of STORE against its checksums.

    Damaged subjects (a chunk deleted, truncated or changed) are listed, one line each, and
    marked failed: the next `run` segments them again, the next `ingest` re-reads a damaged
    scan. Exit code 1 when anything is damaged, 2 when the store cannot be checked.
    """
    from rich.console import Console

    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io.integrity import verify_store
    from spineps_dask.io.store import CohortStore

    console = Console()
    try:
        # Opened read-only first: a store that does not exist is an error, never created.
        opened = CohortStore(store, mode="r")
        if mark:
            opened = CohortStore(store, mode="a")
        report = verify_store(opened, full=not quick, mark=mark)
    except SpinepsDaskError as exc:
        print_error("error", exc)
        raise typer.Exit(2) from exc
    console.print(str(report).splitlines()[0])
    for subject, volumes in report.damaged.items():
        for message in volumes.values():
            print_error(f"damaged {subject}", message)
    if report.damaged:
        console.print("marked failed: `spineps-dask run` redoes them" if mark else "not marked")
        raise typer.Exit(1)
