"""``spineps-dask demo``: the whole system on a phantom cohort, with the shipped models."""

from __future__ import annotations

from pathlib import Path

import typer

from spineps_dask.cli._progress import console, progress_bar


def demo(
    out: Path = typer.Option(Path("spineps-demo"), "--out", "-o", help="Work folder."),
    subjects: int = typer.Option(4, help="Phantom subjects to generate."),
    seed: int = typer.Option(2024, help="Cohort seed (the demo models never saw these)."),
    region: str | None = typer.Option(
        None, help="cervical | thoracic | lumbar | whole (default: a mix)."
    ),
    cluster: str = typer.Option("local", "--cluster", "-c", help="As for `run`."),
    workers: int | None = typer.Option(None, help="Workers for --cluster local."),
) -> None:
    """Generate phantoms, ingest them, segment them on a local Dask cluster, export NIfTI,
    and score the result against the phantoms' exact ground truth.

    Running it again reuses what is done (resume) and only redoes what changed.
    """
    from spineps_dask.cli.run import execute
    from spineps_dask.config import RunConfig
    from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort

    bids = out / "bids"
    store = out / "cohort.zarr"
    if not (bids / "participants.tsv").is_file():
        overrides = {"region": region} if region else {}
        with progress_bar("phantoms", subjects) as bar:
            write_bids_cohort(
                bids,
                subjects=subjects,
                seed=seed,
                on_subject=lambda _p: bar.advance(bar.task_ids[0]),
                **overrides,
            )
    derivatives = out / "derivatives"
    summary, _ = execute(
        str(store),
        RunConfig(),
        bids=bids,
        references=bids / GROUNDTRUTH,
        cluster=cluster,
        workers=workers,
        report=out / "dask-report.html",
        export=derivatives,
    )
    if summary.failed:
        console.print("[yellow]some subjects failed; scoring the others[/yellow]")
    _score(derivatives, bids / GROUNDTRUTH, out)


def _score(pred: Path, ref: Path, out: Path) -> None:
    from rich.table import Table

    from spineps_dask.evaluate import evaluate_folders, write_summary
    from spineps_dask.io.tables import write_table
    from spineps_dask.metrics.tables import summarize

    with console.status("scoring against the phantoms' ground truth"):
        table, failures = evaluate_folders(pred, ref, run_id="demo")
    if table.empty:
        console.print("[red]nothing to score[/red]")
        return
    write_table(table, out / "metrics.parquet")
    summary = summarize(table)
    write_summary(summary, out / "metrics_summary")
    view = Table(title="demo accuracy (mean ± SD over subjects)")
    for col in ("structure", "level", "metric", "mean ± SD"):
        view.add_column(col)
    keep = summary[summary["metric"].isin(["DSC", "PQ", "RQ"])]
    for _, row in keep.iterrows():
        view.add_row(
            str(row["structure"]),
            str(row["level"]),
            str(row["metric"]),
            f"{row['mean']:.3f} ± {row['sd']:.3f}",
        )
    console.print(view)
    console.print(f"tables: {out / 'metrics.parquet'}, {out / 'metrics_summary.md'}")
    for subject, error in failures.items():
        console.print(f"[red]not scored[/red] {subject}: {error}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
