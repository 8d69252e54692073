"""``spineps-dask phantom OUT``: write a cohort of synthetic spines with ground truth (BIDS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_REGIONS = ("cervical", "thoracic", "lumbar", "whole")


def phantom(
    out: Annotated[Path, typer.Argument(help="Output folder (a BIDS dataset is written here).")],
    subjects: Annotated[int, typer.Option("--subjects", "-n", min=1, help="How many.")] = 4,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Cohort seed (reproducible).")] = 0,
    region: Annotated[
        str | None,
        typer.Option(help="Field of view: cervical, thoracic, lumbar or whole (default: random)."),
    ] = None,
    orientation: Annotated[
        str | None, typer.Option(help="Stored axis codes, e.g. PIR or RAS (default: random).")
    ] = None,
    spacing: Annotated[
        str | None,
        typer.Option(
            help="Voxel size in mm along the stored axes, e.g. 1,1,3 (with --orientation)."
        ),
    ] = None,
    appearance: Annotated[
        str,
        typer.Option(
            help="Contrast: t2w, t1w (CSF dark) or random (tissue signals drawn per subject)."
        ),
    ] = "t2w",
) -> None:
    """Generate seeded phantoms: scans plus semantic/instance masks, centroids and truth."""
    from spineps_dask.cli._progress import console, progress_bar
    from spineps_dask.errors import InputError
    from spineps_dask.phantom.cohort import write_bids_cohort

    overrides: dict[str, object] = {"appearance": appearance}
    if region is not None:
        if region not in _REGIONS:
            console.print(f"[red]--region {region!r} is not one of {', '.join(_REGIONS)}[/red]")
            raise typer.Exit(2)
        overrides["region"] = region
    if orientation is not None:
        overrides["orientation"] = tuple(orientation.upper())
    if spacing is not None:
        try:
            overrides["spacing"] = tuple(float(v) for v in spacing.split(","))
        except ValueError:
            console.print(f"[red]--spacing {spacing!r} is not three numbers like 1,1,3[/red]")
            raise typer.Exit(2) from None
    try:
        with progress_bar("phantoms", subjects) as progress:
            scans = write_bids_cohort(
                out,
                subjects=subjects,
                seed=seed,
                on_subject=lambda _p: progress.advance(progress.task_ids[0]),
                **overrides,
            )
    except InputError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    typer.echo(f"wrote {len(scans)} subjects to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``phantom`` command to the main app."""
    app.command("phantom")(phantom)
