"""``spineps-dask models``: list, check and train the model folders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(
    help="Inspect, check and train SPINEPS model folders.", no_args_is_help=True
)


@models_app.command("list")
def list_models(
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Models directory (default: $SPINEPS_SEGMENTOR_MODELS)."),
    ] = None,
) -> None:
    """Show every model sub-folder with its kind, modality, resolution and status."""
    from rich.console import Console
    from rich.table import Table

    from spineps_dask.errors import ModelError
    from spineps_dask.models.folders import scan_models

    console = Console()
    try:
        entries = scan_models(models)
    except ModelError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    table = Table(title="SPINEPS models")
    for col in ("name", "kind", "modality", "resolution (mm)", "folds", "status"):
        table.add_column(col)
    for e in entries:
        if e.folder is None:
            table.add_row(e.path.name, "?", "", "", "", f"[red]{e.problems[0]}[/red]")
            continue
        c = e.folder.config
        table.add_row(
            e.path.name,
            c.kind,
            "/".join(c.modality),
            " x ".join(f"{r:g}" for r in c.resolution_range),
            ",".join(str(f) for f in c.available_folds) if c.kind == "semantic" else "-",
            "[green]ok[/green]",
        )
    console.print(table)


@models_app.command("check")
def check_model(
    folder: Annotated[Path, typer.Argument(help="A model folder, or a folder of model folders.")],
    load: Annotated[
        bool, typer.Option(help="Also load the weights (catches unsafe or mismatched ones).")
    ] = True,
) -> None:
    """Validate a model folder; exit code 1 and one line per problem when something is wrong."""
    from rich.console import Console

    from spineps_dask.errors import ModelError
    from spineps_dask.models.config import CONFIG_NAME

    console = Console()
    targets = (
        [folder]
        if (folder / CONFIG_NAME).is_file() or not folder.is_dir()
        else [p for p in sorted(folder.iterdir()) if p.is_dir()]
    )
    failed = 0
    for target in targets:
        try:
            kind = _check_one(target, load=load)
            console.print(f"[green]ok[/green] {target} ({kind})")
        except ModelError as err:
            failed += 1
            console.print(f"[red]FAIL[/red] {target}: {err}")
    if failed or not targets:
        raise typer.Exit(1)


def _check_one(folder: Path, *, load: bool) -> str:
    from spineps_dask.models.folders import load_model_folder

    mf = load_model_folder(folder)
    if load and mf.kind == "instance":
        from spineps_dask.models.instance import InstanceModel

        InstanceModel.from_folder(folder, device="cpu")
    elif load:
        from spineps_dask.models.semantic import SemanticModel

        SemanticModel.from_folder(folder, device="cpu")
    return mf.kind


@models_app.command("train-demo")
def train_demo(
    out: Annotated[Path, typer.Argument(help="Where to write 'semantic/' and 'instance/'.")],
    seed: Annotated[int, typer.Option(help="Seed for phantoms, init and sampling.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 2,
    which: Annotated[
        str,
        typer.Option(
            help="'semantic', 'instance', 'both', 'data' (only prepare phantoms) or 'cards' "
            "(re-measure the models in OUT on their held-out phantoms and rewrite MODEL_CARD.md)."
        ),
    ] = "both",
    iterations: Annotated[
        int | None, typer.Option(help="Optimiser steps for the model(s) trained (default: config).")
    ] = None,
    budget_s: Annotated[
        float | None,
        typer.Option("--budget-s", help="Seconds of training per model (default: config)."),
    ] = None,
    train_phantoms: Annotated[
        int | None,
        typer.Option(help="Training phantoms (seeds SEED*1000 + 0..N-1; default: config)."),
    ] = None,
) -> None:
    """Train the small demo models on synthetic phantoms (CPU, minutes)."""
    from spineps_dask.models.train_demo import DemoTrainConfig, train_demo_models

    if which not in ("data", "semantic", "instance", "both", "cards"):
        raise typer.BadParameter(
            f"must be semantic, instance, both, data or cards, not {which!r}", param_hint="--which"
        )
    cfg = DemoTrainConfig(seed=seed, threads=threads)
    if train_phantoms is not None:
        cfg = replace(cfg, n_train=train_phantoms)
    cfg = cfg.with_limits(iterations=iterations, budget_s=budget_s)
    train_demo_models(out, cfg, which=which)


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the main app."""
    app.add_typer(models_app, name="models")
