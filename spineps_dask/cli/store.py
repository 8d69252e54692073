"""``spineps-dask ingest`` / ``export``: a BIDS cohort into the cohort store and back out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spineps_dask.cli._progress import print_error


def register(app: typer.Typer) -> None:
    """Add the store commands to the ``spineps-dask`` app."""
    app.command("ingest")(ingest_command)
    app.command("export")(export_command)


def ingest_command(
    bids_dir: Annotated[
        Path, typer.Argument(help="BIDS cohort folder: sub-*/anat or sub-*/ses-*/anat scans.")
    ],
    store: Annotated[str, typer.Argument(help="Cohort store: a folder or an fsspec URL (s3://).")],
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", help="Scans read in parallel.")
    ] = None,
    suffix: Annotated[str, typer.Option(help="BIDS suffix of the scans to ingest.")] = "T2w",
    references: Annotated[
        Path | None,
        typer.Option(
            help="Derivatives folder with reference masks (*_seg-spine_msk / *_seg-vert_msk); "
            "the next run scores them (finished subjects without running a model again)."
        ),
    ] = None,
    max_scan_gb: Annotated[
        float, typer.Option(help="Refuse scans whose voxels take more (checked from the header).")
    ] = 1.0,
) -> None:
    """Validate every scan of BIDS_DIR and write it to STORE.

    Bad scans are listed and recorded as failed; the others are still ingested.
    For s3:// stores, credentials and endpoint come from the environment (AWS_* variables,
    FSSPEC_S3_ENDPOINT_URL), never from the command line.
    Exit code 1 when any scan or reference was refused (listed), 2 when nothing could be
    done.
    """
    from rich.console import Console
    from rich.progress import Progress

    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io._urls import redact_url
    from spineps_dask.io.cohort import discover_scans, ingest
    from spineps_dask.io.validate import ScanLimits

    console = Console()
    try:
        total = len(discover_scans(bids_dir, suffix=suffix))
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"ingesting into {redact_url(store)}", total=total)
            summary = ingest(
                bids_dir,
                store,
                workers=workers,
                suffix=suffix,
                progress=lambda row: bar.advance(task),
                limits=ScanLimits(max_bytes=int(max_scan_gb * 2**30)),
            )
    except SpinepsDaskError as exc:
        print_error("error", exc)
        raise typer.Exit(2) from exc
    console.print(_summary_table(summary))
    refused = len(summary.failed)
    if references is not None:
        from spineps_dask.io.references import ingest_references
        from spineps_dask.io.store import CohortStore

        try:  # the store's lock may be held by a run started meanwhile
            refs = ingest_references(references, CohortStore(store, mode="a"))
        except SpinepsDaskError as exc:
            print_error("error", exc)
            raise typer.Exit(2) from exc
        console.print(
            f"references: {len(refs['ingested'])} subjects, {len(refs['missing'])} without, "
            f"{len(refs['failed'])} refused"
        )
        for subject, reason in refs["failed"].items():
            console.print(f"  [red]{subject}[/red]: {reason}")
        refused += len(refs["failed"])
    if refused:
        raise typer.Exit(1)


def _summary_table(summary):
    from rich.table import Table

    table = Table(title=f"ingest ({summary.seconds:.1f} s)")
    table.add_column("status")
    table.add_column("subjects", justify="right")
    table.add_column("details")
    table.add_row("ingested", str(len(summary.ingested)), ", ".join(summary.ingested[:10]))
    table.add_row("skipped", str(len(summary.skipped)), "unchanged since the last ingest")
    table.add_row("failed", str(len(summary.failed)), "")
    for subject, reason in summary.failed.items():
        table.add_row("", subject, f"[red]{reason}[/red]")
    return table


def export_command(
    store: Annotated[str, typer.Argument(help="Cohort store: a folder or an fsspec URL.")],
    out: Annotated[Path, typer.Argument(help="Output folder for the NIfTI derivatives.")],
    arrays: Annotated[
        list[str] | None,
        typer.Option(
            "--array", "-a", help="Volume to export (repeatable; default semantic, instance)."
        ),
    ] = None,
) -> None:
    """Write the STORE's volumes as NIfTI with BIDS derivative names under OUT.

    OUT is a BIDS derivatives dataset (with dataset_description.json). Exit code 1 when
    damaged subjects were left out (listed, and marked failed so that the next run redoes
    them), 2 when nothing could be exported.
    """
    from rich.console import Console

    from spineps_dask.errors import DamagedVolumeError, SpinepsDaskError
    from spineps_dask.io.export import export
    from spineps_dask.io.names import OUTPUTS

    console = Console()
    try:
        written = export(store, out, arrays=tuple(arrays or OUTPUTS))
    except DamagedVolumeError as exc:  # the other subjects were written: done in part
        print_error("error", exc)
        raise typer.Exit(1) from exc
    except SpinepsDaskError as exc:
        print_error("error", exc)
        raise typer.Exit(2) from exc
    console.print(f"wrote {len(written)} files to {out}")
