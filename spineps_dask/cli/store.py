"""``spineps-dask ingest`` / ``export``: a BIDS cohort into the cohort store and back out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spineps_dask.cli import _options
from spineps_dask.cli._progress import print_error

if TYPE_CHECKING:  # imported by the command itself, so that --help stays instant
    from rich.console import Console

    from spineps_dask.batch import BatchEvents
    from spineps_dask.io.cohort import IngestSummary
    from spineps_dask.io.references import ReferenceSummary
else:
    BatchEvents = object  # the no-op base only matters to the type checker


def register(app: typer.Typer) -> None:
    """Add the store commands to the ``spineps-dask`` app."""
    app.command("ingest")(ingest_command)
    app.command("export")(export_command)


def ingest_command(
    bids_dir: Annotated[
        Path, typer.Argument(help="BIDS cohort folder: sub-*/anat or sub-*/ses-*/anat scans.")
    ],
    store: Annotated[str, typer.Argument(help="Cohort store: a folder or an fsspec URL (s3://).")],
    cluster: _options.Cluster = "local",
    workers: _options.Workers = None,
    threads: _options.Threads = None,
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

    The scans are read and written by the workers of a Dask cluster, started or joined as
    `run` does (--cluster, --workers, --threads). Bad scans are listed and recorded as
    failed; the others are still ingested. For s3:// stores, credentials and endpoint come
    from the environment (AWS_* variables, FSSPEC_S3_ENDPOINT_URL), never from the command
    line. Exit code 1 when any scan or reference was refused (listed), 2 when nothing could
    be done.
    """
    from rich.console import Console

    from spineps_dask.batch import run_ingest
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io.validate import ScanLimits

    events = _IngestEvents(Console(), store)
    try:
        summary, refs = run_ingest(
            store,
            bids_dir,
            references=references,
            cluster=cluster,
            workers=workers,
            threads=threads,
            suffix=suffix,
            limits=ScanLimits(max_bytes=int(max_scan_gb * 2**30)),
            events=events,
        )
    except SpinepsDaskError as exc:  # locked store, unknown cluster, missing folder
        events.stop()
        print_error("error", exc)
        raise typer.Exit(2) from exc
    finally:
        events.stop()
    if summary.failed or (refs is not None and refs["failed"]):
        raise typer.Exit(1)


class _IngestEvents(BatchEvents):
    """`run_ingest`'s events -> a progress bar over the scans, then the printed summaries
    (each as its part ends, so the scans' stands when the references' fails)."""

    def __init__(self, console: Console, store: str) -> None:
        from rich.progress import Progress

        from spineps_dask.io._urls import redact_url

        self.console = console
        self.where = redact_url(store)
        self.bar = Progress(console=console, transient=True)
        self.task: Any = None

    def scans_found(self, n: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(f"ingesting into {self.where}", total=n)

    def scan_ingested(self, row: dict[str, Any]) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()

    def ingested(self, summary: IngestSummary) -> None:
        self.stop()
        self.console.print(_summary_table(summary))

    def references_ingested(self, refs: ReferenceSummary) -> None:
        self.console.print(
            f"references: {len(refs['ingested'])} subjects, {len(refs['missing'])} without, "
            f"{len(refs['failed'])} refused"
        )
        for subject, reason in refs["failed"].items():
            self.console.print(f"  [red]{subject}[/red]: {reason}")

    def cluster_ready(self, dashboard: str) -> None: ...


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
