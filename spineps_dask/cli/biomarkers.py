"""``spineps-dask biomarkers``: per-level body, disc, canal and cord sizes of a mask folder."""

from __future__ import annotations

from pathlib import Path

import typer

from spineps_dask.cli._progress import console, print_error


def biomarkers(
    mask_dir: Path = typer.Argument(..., file_okay=False, help="Folder of SPINEPS masks."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Tidy table (Parquet); default <MASK_DIR>/biomarkers.parquet."
    ),
) -> None:
    """Body volume and heights, disc volume and height, canal and cord area per level.

    Pairs masks by BIDS names: *_seg-spine_msk.nii.gz (semantic), *_seg-vert_msk.nii.gz.

    Exit code 1 when some scan failed (the others are still written), 2 when all did.
    """
    from rich.console import Console

    from spineps_dask.biomarkers.folders import biomarkers_folder
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io.tables import write_table

    out = out or mask_dir / "biomarkers.parquet"
    try:
        with console.status("measuring") as status:
            table, errors = biomarkers_folder(
                mask_dir, on_subject=lambda s: status.update(f"measured {s}")
            )
    except SpinepsDaskError as exc:
        print_error("cannot measure", exc)
        raise typer.Exit(code=2) from exc
    for subject, error in errors.items():
        print_error(f"{subject} not measured", error)
    if table.empty:
        console.print("[red]no scan could be measured[/red]")
        raise typer.Exit(code=2)
    write_table(table, out)
    summary = table.groupby(["structure", "measure"])["value"].median().round(1)
    Console().print(summary.to_string())  # stdout: the result; progress goes to stderr
    console.print(f"{table['subject'].nunique()} scans, table {out}")
    if errors:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("biomarkers")(biomarkers)
