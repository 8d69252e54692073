"""``spineps-dask run``: a cohort through the cluster, as `spineps_dask.batch.run_batch`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from spineps_dask.cli import _options
from spineps_dask.cli._progress import Counter, console, make_progress, print_error

if TYPE_CHECKING:  # imported by the command itself, so that --help stays instant
    from rich.progress import Progress

    from spineps_dask.batch import BatchEvents
    from spineps_dask.config import RunConfig
    from spineps_dask.distributed.outcomes import SubjectOutcome
    from spineps_dask.distributed.resume import RunSummary
    from spineps_dask.io.cohort import IngestSummary
    from spineps_dask.io.references import ReferenceSummary
else:
    BatchEvents = object  # the no-op base only matters to the type checker

logger = logging.getLogger(__name__)


def run(
    store: str = typer.Argument(..., help="Cohort store (folder or s3://... URL)."),
    bids: Path | None = typer.Option(
        None, "--input", "-i", help="BIDS folder to ingest first (new and changed scans only)."
    ),
    suffix: str | None = typer.Option(
        None,
        help="BIDS suffix of the scans --input ingests (*_<suffix>.nii.gz). Default: ct with a "
        "CT semantic model, else T2w.",
    ),
    references: Path | None = typer.Option(
        None,
        help="Reference masks folder: new or changed references are ingested and scored "
        "(finished subjects without running a model again).",
    ),
    cluster: _options.Cluster = "local",
    workers: _options.Workers = None,
    threads: _options.Threads = None,
    semantic_model: _options.SemanticModel = None,
    instance_model: _options.InstanceModel = None,
    labeling_model: _options.LabelingModel = None,
    naming: _options.Naming = None,
    config: Path | None = typer.Option(None, help="Run settings YAML (RunConfig fields)."),
    n4: bool | None = typer.Option(None, "--n4/--no-n4", help="N4 bias-field correction."),
    recipe: str | None = typer.Option(
        None,
        help="reference: feed the semantic network as spineps 2.1.3 does (for published weights); "
        "native: let nnU-Net resample the scan (models trained that way). "
        "Default: reference.",
    ),
    reference_mode: bool | None = typer.Option(
        None,
        "--reference-mode/--project-rules",
        help="Switch off this project's rules beyond spineps 2.1.3 (its cleaning, instance "
        "phase and post-processing as the reference runs them), for fidelity checks.",
    ),
    postprocess: bool | None = typer.Option(
        None, "--postprocess/--no-postprocess", help="The paper's post-processing."
    ),
    cutouts_per_task: int | None = typer.Option(None, help="Cutouts per instance task."),
    max_in_flight: int | None = typer.Option(None, help="Subjects in the cluster at once."),
    force: bool = typer.Option(False, help="Recompute subjects that are already done."),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Check every voxel of finished subjects against their checksums (default: the "
        "stored chunk sizes) and redo the damaged ones.",
    ),
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
        "labeling_model": labeling_model,
        "naming": naming,
        "n4": n4,
        "recipe": recipe,
        "reference_mode": reference_mode,
        "postprocess": postprocess,
        "cutouts_per_task": cutouts_per_task,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        cfg = (
            RunConfig.from_file(config, **overrides)
            if config
            else RunConfig.from_request(overrides)
        )
    except (ValueError, OSError) as exc:  # unknown setting, recipe or naming; unreadable YAML
        print_error("settings problem", exc)
        raise typer.Exit(code=2) from exc
    summary, inputs_failed = execute(
        store,
        cfg,
        bids=bids,
        suffix=suffix,
        references=references,
        cluster=cluster,
        workers=workers,
        threads=threads,
        max_in_flight=max_in_flight,
        force=force,
        verify=verify,
        report=report,
        export=export,
    )
    if summary.failed or inputs_failed:
        raise typer.Exit(code=1)


def execute(store: str, cfg: RunConfig, **options: Any) -> tuple[RunSummary, int]:
    """`run_batch` with progress bars and a printed summary; problems become exit codes.

    Returns the run's summary and how many scans or references the ingest refused (listed
    on the console). Exit code 2 (raised here): nothing was run, because a model, the store
    or the cluster cannot be used (the message says why and the fix).
    """
    from spineps_dask.batch import run_batch
    from spineps_dask.errors import ClusterError, ModelError, StoreError

    try:
        progress = make_progress()  # shown once the cluster is up: checks fail without bars
        events = _BarEvents(progress)
        try:
            summary = run_batch(store, cfg, events=events, **options)
        finally:
            progress.stop()
    except ModelError as exc:
        print_error("model problem", exc)
        raise typer.Exit(code=2) from exc
    except StoreError as exc:  # store locked, full or read-only: a message, not a traceback
        print_error("store problem", exc)
        raise typer.Exit(code=2) from exc
    except ClusterError as exc:  # unknown cluster, missing extra, workers without MODEL
        print_error("cluster problem", exc)
        raise typer.Exit(code=2) from exc
    except ModuleNotFoundError as exc:  # --report without bokeh
        raise typer.BadParameter(str(exc), param_hint="--report") from exc
    _print_summary(summary)
    return summary, events.inputs_failed


class _BarEvents(BatchEvents):
    """Batch events -> printed lines and two rich bars (subjects, cutouts)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.subjects = Counter(progress, "subjects", 0)
        self.cutouts = Counter(progress, "cutouts", 0)
        self.scores: Counter | None = None
        self.failed = 0
        self.inputs_failed = 0  # scans and references the ingest refused

    def scan_ingested(self, row: dict[str, Any]) -> None: ...  # the summary says it all

    def ingested(self, summary: IngestSummary) -> None:
        console.print(
            f"ingest: {len(summary.ingested)} new, {len(summary.skipped)} unchanged, "
            f"{len(summary.failed)} failed"
        )
        for scan, reason in summary.failed.items():
            console.print(f"  [red]{scan}[/red]: {reason}")
        self.inputs_failed += len(summary.failed)

    def references_ingested(self, found: ReferenceSummary) -> None:
        console.print(
            f"references: {len(found['ingested'])} new or changed, "
            f"{len(found['unchanged'])} unchanged, {len(found['failed'])} refused"
        )
        for subject, reason in found["failed"].items():
            console.print(f"  [red]{subject}[/red]: {reason}")
        self.inputs_failed += len(found["failed"])

    def cluster_ready(self, dashboard: str) -> None:
        console.print(f"[bold]Dashboard:[/bold] {dashboard}")
        self.progress.start()

    def exported(self, folder: Path, paths: list[Path]) -> None:
        console.print(f"exported {len(paths)} files to {folder}")

    def subjects_total(self, n: int) -> None:
        self.subjects.add_total(n)

    def scores_total(self, n: int) -> None:
        if n:
            self.scores = Counter(self.progress, "scoring", n)

    def cutouts_planned(self, n: int) -> None:
        self.cutouts.add_total(n)

    def cutouts_done(self, n: int) -> None:
        self.cutouts.advance(n)

    def subject_finished(self, outcome: SubjectOutcome) -> None:
        if outcome.status == "failed":
            # One line as the subject ends (so a run stopped later, by a full disk say, has
            # said it too), and only here: the summary counts it (issue 21 item 6).
            print_error(f"{outcome.subject} failed in {outcome.step}", outcome.error)
        self.failed += outcome.status == "failed"
        note = f"[red]{self.failed} failed" if self.failed else ""
        if outcome.task == "score" and self.scores is not None:
            self.scores.advance(1)
        else:
            self.subjects.advance(1, note=note)


def _print_summary(summary: RunSummary) -> None:
    from rich.table import Table

    table = Table(title=f"run {summary.run_id}")
    for col in ("done", "failed", "skipped", "scored", "subjects/hour", "wall (s)"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(summary.done)),
        str(len(summary.failed)),
        str(len(summary.skipped)),
        str(len(summary.scored)),
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


def register(app: typer.Typer) -> None:
    app.command("run")(run)
