"""``spineps-dask eval``: score predicted masks against reference masks, like the paper's tables."""

from __future__ import annotations

from pathlib import Path

import typer

from spineps_dask.cli._progress import console, print_error


def evaluate(
    pred_dir: Path = typer.Argument(..., file_okay=False, help="Folder of predicted masks."),
    ref_dir: Path = typer.Argument(..., file_okay=False, help="Folder of reference masks."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Tidy table (Parquet); default <PRED_DIR>/evaluation.parquet."
    ),
    run_id: str | None = typer.Option(None, "--run-id", help="Stored in a run_id column."),
    per_instance: bool = typer.Option(
        False, "--per-instance", help="Also list each vertebra / IVD / endplate in the summary."
    ),
) -> None:
    """Dice, ASSD, RQ/SQ/PQ per subject and structure; prints mean ± SD over subjects.

    Pairs masks by BIDS names: *_seg-spine_msk.nii.gz (semantic), *_seg-vert_msk.nii.gz.

    Writes the tidy table and <out stem>_summary.csv / .md beside it.

    Exit code 1 when some subject failed (the others are still written), 2 when all did.
    """
    from rich.console import Console
    from rich.table import Table

    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.evaluate import evaluate_folders, write_summary
    from spineps_dask.io.tables import write_table
    from spineps_dask.metrics.structures import TITLES
    from spineps_dask.metrics.tables import format_mean_sd, metric_label, summarize

    out = out or pred_dir / "evaluation.parquet"
    context = {"run_id": run_id} if run_id else {}
    try:
        with console.status("evaluating") as status:
            table, errors = evaluate_folders(
                pred_dir,
                ref_dir,
                on_subject=lambda s, e: status.update(f"evaluated {s}"),
                **context,
            )
    except SpinepsDaskError as exc:
        print_error("cannot evaluate", exc)
        raise typer.Exit(code=2) from exc
    for subject, error in errors.items():
        print_error(f"{subject} not evaluated", error)
    if table.empty:
        console.print("[red]no subject could be evaluated[/red]")
        raise typer.Exit(code=2)
    levels = sorted(set(table["level"])) if per_instance else ("global", "instance")
    summary = summarize(table, levels=levels)
    write_table(table, out)
    csv, md = write_summary(summary, out.with_name(out.stem + "_summary"))

    view = Table(title=f"{table['subject'].nunique()} subjects")
    for col in ("Structure", "Level", "Metric", "Mean ± SD", "n"):
        view.add_column(col)
    for r in summary.itertuples(index=False):
        view.add_row(
            TITLES.get(r.structure, r.structure),
            r.level,
            metric_label(r.metric),
            format_mean_sd(r.mean, r.sd),
            f"{r.n}" + (f" (+{r.n_nonfinite} n/a)" if r.n_nonfinite else ""),
        )
    Console().print(view)  # stdout: the result; progress and errors go to stderr
    console.print(f"table {out}\nsummary {csv}, {md}")
    if errors:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
