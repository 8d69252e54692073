"""``spineps-dask run``: a cohort through the cluster; ``segment``: one scan, no cluster."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path

import typer

from spineps_dask.cli._progress import Counter, console, make_progress

logger = logging.getLogger(__name__)

_MODEL_HELP = "Model folder, or a name under $SPINEPS_SEGMENTOR_MODELS (default: shipped demo)."


def run(
    store: str = typer.Argument(..., help="Cohort store (folder or s3://... URL)."),
    bids: Path | None = typer.Option(
        None, "--input", "-i", help="BIDS folder to ingest first (new and changed scans only)."
    ),
    references: Path | None = typer.Option(
        None, help="With --input: reference masks folder; subjects with them get scored."
    ),
    cluster: str = typer.Option(
        "local",
        "--cluster",
        "-c",
        help="local | cuda | slurm | gateway | kubernetes | a YAML in cluster/ | tcp://address",
    ),
    workers: int | None = typer.Option(None, help="Workers for --cluster local."),
    threads: int | None = typer.Option(None, help="Threads per worker (torch, N4)."),
    semantic_model: str | None = typer.Option(None, "--semantic-model", help=_MODEL_HELP),
    instance_model: str | None = typer.Option(None, "--instance-model", help=_MODEL_HELP),
    config: Path | None = typer.Option(None, help="Run settings YAML (RunConfig fields)."),
    n4: bool | None = typer.Option(None, "--n4/--no-n4", help="N4 bias-field correction."),
    recipe: str | None = typer.Option(
        None,
        help="reference: feed the semantic network as spineps 2.1.3 does (for published weights); "
        "native: let nnU-Net resample the scan (models trained that way). "
        "Default: reference.",
    ),
    postprocess: bool | None = typer.Option(
        None, "--postprocess/--no-postprocess", help="The paper's post-processing."
    ),
    cutouts_per_task: int | None = typer.Option(None, help="Cutouts per instance task."),
    max_in_flight: int | None = typer.Option(None, help="Subjects in the cluster at once."),
    force: bool = typer.Option(False, help="Recompute subjects that are already done."),
    report: Path | None = typer.Option(None, help="Save Dask's performance report (HTML)."),
    export: Path | None = typer.Option(None, help="Also write NIfTI outputs to this folder."),
) -> None:
    """Segment every ingested subject of STORE on a Dask cluster; resumable.

    Subjects already done with the same models and settings are skipped; failed ones are
    retried. Progress per phase, then a summary table; the manifest in the store records
    every subject and phase.
    """
    from spineps_dask.config import RunConfig

    overrides = {
        "semantic_model": semantic_model,
        "instance_model": instance_model,
        "n4": n4,
        "recipe": recipe,
        "postprocess": postprocess,
        "cutouts_per_task": cutouts_per_task,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    from spineps_dask.errors import StoreError

    cfg = RunConfig.from_file(config, **overrides) if config else RunConfig.from_dict(overrides)
    try:
        summary = execute(
            store,
            cfg,
            bids=bids,
            references=references,
            cluster=cluster,
            workers=workers,
            threads=threads,
            max_in_flight=max_in_flight,
            force=force,
            report=report,
            export=export,
        )
    except StoreError as exc:  # store locked, full or read-only: a message, not a traceback
        console.print(f"[red]store problem:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if summary.failed:
        raise typer.Exit(code=1)


def execute(
    store: str,
    cfg,
    *,
    bids: Path | None = None,
    references: Path | None = None,
    cluster: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    max_in_flight: int | None = None,
    force: bool = False,
    report: Path | None = None,
    export: Path | None = None,
):
    """Ingest (optional), run on a cluster with progress bars, print the summary, export."""
    from spineps_dask.distributed.cluster import connect
    from spineps_dask.distributed.model_cache import WorkerSetup
    from spineps_dask.distributed.runner import run_store
    from spineps_dask.io.store import CohortStore

    _check_models(cfg)
    if report is not None and importlib.util.find_spec("bokeh") is None:
        # Checked before any work: distributed draws the report with bokeh only at the end.
        raise typer.BadParameter(
            "--report needs bokeh (pip install bokeh); nothing was run", param_hint="--report"
        )
    if bids is not None:
        _ingest(bids, store, references)
    cohort = CohortStore(store, mode="a")
    client, cluster_obj = connect(cluster, n_workers=workers, threads_per_worker=threads)
    console.print(f"[bold]Dashboard:[/bold] {client.dashboard_link}")
    try:
        nthreads = threads or max(client.nthreads().values(), default=1)
        client.register_plugin(WorkerSetup(threads=nthreads))
        with performance_report_to(report), make_progress() as progress:
            events = _BarEvents(progress)
            summary = run_store(
                client, cohort, cfg, force=force, events=events, max_in_flight=max_in_flight
            )
    finally:
        client.close()
        if cluster_obj is not None:
            cluster_obj.close()
    _print_summary(summary)
    if export is not None:
        from spineps_dask.io.export import export as export_nifti

        paths = export_nifti(store, export)
        console.print(f"exported {len(paths)} files to {export}")
    return summary


def performance_report_to(path: Path | None) -> contextlib.AbstractContextManager:
    """Dask's performance report of what runs inside, saved as HTML at ``path`` (or nothing)."""
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    return performance_report(filename=str(path))


class _BarEvents:
    """Runner events -> three rich bars."""

    def __init__(self, progress):
        self.subjects = Counter(progress, "subjects", 0)
        self.cutouts = Counter(progress, "cutouts", 0)
        self.failed = 0

    def subjects_total(self, n: int) -> None:
        self.subjects.add_total(n)

    def cutouts_planned(self, n: int) -> None:
        self.cutouts.add_total(n)

    def cutouts_done(self, n: int) -> None:
        self.cutouts.advance(n)

    def subject_finished(self, outcome) -> None:
        self.failed += outcome.status == "failed"
        self.subjects.advance(1, note=f"[red]{self.failed} failed" if self.failed else "")


def _check_models(cfg) -> None:
    from spineps_dask.errors import ModelError
    from spineps_dask.models.folders import load_model_folder

    try:
        load_model_folder(cfg.semantic_model, kind="semantic")
        load_model_folder(cfg.instance_model, kind="instance")
    except ModelError as exc:
        console.print(f"[red]model problem:[/red] {exc}")
        raise typer.Exit(code=2) from exc


def _ingest(bids: Path, store: str, references: Path | None) -> None:
    from spineps_dask.io.cohort import ingest
    from spineps_dask.io.references import ingest_references
    from spineps_dask.io.store import CohortStore

    summary = ingest(bids, store)
    console.print(
        f"ingest: {len(summary.ingested)} new, {len(summary.skipped)} unchanged, "
        f"{len(summary.failed)} failed"
    )
    if references is not None:
        refs = ingest_references(references, CohortStore(store))
        console.print(f"references: {len(refs['ingested'])} subjects")


def _print_summary(summary) -> None:
    from rich.table import Table

    table = Table(title=f"run {summary.run_id}")
    for col in ("done", "failed", "skipped", "subjects/hour", "wall (s)"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(summary.done)),
        str(len(summary.failed)),
        str(len(summary.skipped)),
        f"{summary.subjects_per_hour:.0f}",
        f"{summary.wall_seconds:.1f}",
    )
    console.print(table)
    phases = summary.phase_seconds()
    if phases:
        pt = Table(title="task seconds per phase (summed over subjects)")
        pt.add_column("phase")
        pt.add_column("seconds", justify="right")
        for k, v in phases.items():
            pt.add_row(k, f"{v:.1f}")
        console.print(pt)
    for o in summary.failed:
        console.print(f"[red]failed[/red] {o.subject} in {o.step}: {o.error}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
