"""``spineps-dask models``: list, check and train the model folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from spineps_dask.models.catalog import CatalogEntry
    from spineps_dask.models.install import Installed

models_app = typer.Typer(
    help="Inspect, check and train SPINEPS model folders.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as the main app's
)


_MODELS_HELP = (
    "Models directory (default: $SPINEPS_SEGMENTOR_MODELS, else "
    "~/.local/share/spineps-dask/models or the platform's user data folder)."
)
_LOAD_HELP = "Also load the weights on the CPU (catches unsafe or mismatched checkpoints)."
_PUBLISHED_NAMES = "t2w, t1w, vibe, ct, instance, ct_instance, t2w_labeling, ct_labeling"


@models_app.command("list")
def list_models(
    models: Annotated[Path | None, typer.Option("--models", help=_MODELS_HELP)] = None,
) -> None:
    """Show the shipped demo models and the models directory: kind, modality, version, status.

    Always lists the demo models; a models directory that does not exist yet is reported, not
    an error (unless given with --models).
    """
    from rich.console import Console

    from spineps_dask.models.catalog import catalog

    console = Console()
    cat = catalog(models)
    console.print(_table(f"shipped demo models ({cat.demo_root})", cat.demo))
    where = f"models directory {cat.root} ({cat.root_origin})"
    if cat.installed is None:
        console.print(
            f"[yellow]{escape(where)} does not exist yet[/yellow]; "
            "'spineps-dask models download NAME' or 'models install ZIP' creates it",
            soft_wrap=True,
        )
    else:
        console.print(_table(where, cat.installed))
    if cat.not_installed:
        names = ", ".join(m.name for m in cat.not_installed)
        console.print(
            f"published, not installed: {names} (spineps-dask models download NAME)",
            soft_wrap=True,
        )
    if cat.installed is None and models is not None:
        raise typer.Exit(1)


def _table(title: str, entries: list[CatalogEntry]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("name", "kind", "modality", "version", "resolution (mm)", "status"):
        table.add_column(col)
    for e in entries:
        mf = e.scan.folder
        if mf is None:
            problem = escape(e.scan.problems[0])
            table.add_row(e.scan.path.name, "?", "", e.version, "", f"[red]{problem}")
            continue
        c = mf.config
        resolution = " x ".join(f"{r:g}" for r in c.resolution_range)
        table.add_row(
            e.scan.path.name, c.kind, "/".join(c.modality), e.version, resolution, "[green]ok"
        )
    return table


@models_app.command("check")
def check_model(
    folder: Annotated[Path, typer.Argument(help="A model folder, or a folder of model folders.")],
    load: Annotated[bool, typer.Option(help=_LOAD_HELP)] = True,
) -> None:
    """Validate a model folder; exit code 1 and one line per problem when something is wrong."""
    from rich.console import Console

    from spineps_dask.errors import ModelError
    from spineps_dask.models.config import CONFIG_NAME
    from spineps_dask.models.folders import check_model_folder

    console = Console()
    targets = (
        [folder]
        if (folder / CONFIG_NAME).is_file() or not folder.is_dir()
        else [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    )
    failed = 0
    for target in targets:
        try:
            kind = check_model_folder(target, load=load).kind
            console.print(f"[green]ok[/green] {target} ({kind})")
        except ModelError as err:
            failed += 1
            console.print(f"[red]FAIL[/red] {escape(f'{target}: {err}')}", soft_wrap=True)
    if failed or not targets:
        raise typer.Exit(1)


@models_app.command("download")
def download(
    names: Annotated[
        list[str], typer.Argument(help=f"Published models: {_PUBLISHED_NAMES}.", show_default=False)
    ],
    models: Annotated[Path | None, typer.Option("--models", help=_MODELS_HELP)] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Release base URL, for an institution's mirror laid out as <URL>/<version>/"
            "<archive>.zip (default: $SPINEPS_DASK_MODELS_URL, else the SPINEPS GitHub "
            "releases). file:// works for a mirror on a shared file system.",
        ),
    ] = None,
    load: Annotated[bool, typer.Option("--load-weights", help=_LOAD_HELP)] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the server before giving up.")
    ] = 60.0,
) -> None:
    """Download published SPINEPS models into the models directory, as `spineps` names them.

    Each archive is extracted into a hidden staging folder and moved into place only once it
    validates (as `models check`); processes downloading the same model at once wait for each
    other. Installed models are checked, not downloaded again. Offline (cluster compute nodes)?
    Download the zip elsewhere and use `spineps-dask models install ZIP`.
    """
    from spineps_dask.cli._progress import byte_bar
    from spineps_dask.errors import ModelError
    from spineps_dask.models.download import download_model
    from spineps_dask.models.registry import published_model

    try:
        published = [published_model(n) for n in names]
    except ModelError as err:
        raise typer.BadParameter(str(err), param_hint="NAMES") from err
    failed = 0
    for model in published:
        try:
            with byte_bar(model.archive) as bar:
                result = download_model(
                    model.name,
                    models=models,
                    base_url=url,
                    progress=bar,
                    timeout=timeout,
                    load=load,
                )
        except ModelError as err:
            failed += 1
            _console().print(f"[red]FAIL[/red] {model.name}: {escape(str(err))}", soft_wrap=True)
            continue
        _report(model.name, result)
    if failed:
        raise typer.Exit(1)


@models_app.command("install")
def install(
    source: Annotated[
        Path,
        typer.Argument(
            help="A model zip (e.g. t2w.zip from the SPINEPS releases) or a model folder.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help=f"The published model it is ({_PUBLISHED_NAMES}); default: guessed from the "
            "file name (t2w.zip -> t2w). Installs under the reference's folder name "
            "(T2w_semantic_v1.0.9) and checks the kind."
        ),
    ] = None,
    folder_name: Annotated[
        str | None, typer.Option("--as", help="Install under this folder name instead.")
    ] = None,
    models: Annotated[Path | None, typer.Option("--models", help=_MODELS_HELP)] = None,
    load: Annotated[bool, typer.Option("--load-weights", help=_LOAD_HELP)] = False,
) -> None:
    """Install a model zip or folder without internet (e.g. on a cluster's compute nodes).

    Same checks and the same safe move into place as `models download`: copy t2w.zip from a
    machine with internet and run `spineps-dask models install t2w.zip`.
    """
    from spineps_dask.errors import ModelError
    from spineps_dask.models.install import install_model

    try:
        result = install_model(source, models=models, name=name, folder_name=folder_name, load=load)
    except ModelError as err:
        _console().print(f"[red]FAIL[/red] {escape(f'{source}: {err}')}", soft_wrap=True)
        raise typer.Exit(1) from err
    _report(str(source), result)


def _report(what: str, result: Installed) -> None:
    from spineps_dask.config import models_dir

    state = "already installed" if result.already else "installed"
    option = {
        "semantic": "--semantic-model",
        "instance": "--instance-model",
        "labeling": "--labeling-model",
    }.get(result.model.kind)
    # A bare name resolves only in the models directory; elsewhere the path is needed.
    value = result.path.name if result.path.parent == models_dir() else result.path
    use = f"; use it with {option} {value}" if option else ""
    _console().print(
        f"[green]ok[/green] {escape(f'{what}: {state} at {result.path}{use}')}", soft_wrap=True
    )


def _console() -> Console:
    from rich.console import Console

    return Console()


@models_app.command("train-demo")
def train_demo(
    out: Annotated[
        Path, typer.Argument(help="Where to write 'semantic/', 'instance/' or 'labeling/'.")
    ],
    seed: Annotated[int, typer.Option(help="Seed for phantoms, init and sampling.")] = 0,
    threads: Annotated[
        int, typer.Option(help="Torch CPU threads, and processes preparing phantoms.")
    ] = 2,
    which: Annotated[
        str,
        typer.Option(
            help="'semantic', 'instance', 'both', 'labeling' (the vertebra labelling "
            "classifier, trained on phantom views), 'data' (only prepare phantoms) or 'cards' "
            "(re-measure the models in OUT on their held-out phantoms and rewrite MODEL_CARD.md)."
        ),
    ] = "both",
    iterations: Annotated[
        int | None, typer.Option(help="Optimiser steps for the model(s) trained (default: config).")
    ] = None,
    budget_s: Annotated[
        float | None,
        typer.Option("--budget-s", help="CPU seconds of training per model (default: config)."),
    ] = None,
    train_phantoms: Annotated[
        int | None,
        typer.Option(help="Training phantoms (seeds SEED*1000 + 0..N-1; default: config)."),
    ] = None,
    random_looks: Annotated[
        int | None,
        typer.Option(
            help="Extra semantic-training phantoms with randomised tissue contrast, blur, gamma "
            "and ghosting (seeds SEED*1000 + 500 + 0..N-1; default: config)."
        ),
    ] = None,
    patch_norm: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of semantic training patches z-scored on their own, as a scan cropped "
            "to the patch would be (tight fields of view; default: config).",
        ),
    ] = None,
    fov_cut: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of semantic training patches whose scan ends inside them (zero padding "
            "beyond, as the sliding window pads scans smaller than its patch; default: config).",
        ),
    ] = None,
    relook: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of semantic training patches given a fresh random appearance drawn "
            "from their labels as they are sampled (SynthSeg-style; default: config).",
        ),
    ] = None,
    textbook_sac: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the --random-looks phantoms that keep the T2w phantoms' dural sac "
            "(filling the bony canal) and cord place, so that no look comes with its own "
            "anatomy (default: config).",
        ),
    ] = None,
    t2w_drawn_sac: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the semantic model's T2w training phantoms that draw their dural "
            "sac (often inset in the canal) and cord place as random looks do; the instance "
            "model's stay as they are (default: config).",
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from",
            help="Start from this folder's weights (fine-tuning): a semantic folder with "
            "--which semantic (e.g. the T2w demo model on --random-looks phantoms), a labelling "
            "folder with --which labeling.",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of the semantic or labelling model (default: config)."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            help="Semantic network widths per stage, comma-separated (default: 8,16,32,64; "
            "a wider network wants --device cuda)."
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(help="Where the semantic and instance models train: cpu, cuda or cuda:N."),
    ] = "cpu",
) -> None:
    """Train the small demo models on synthetic phantoms (CPU, minutes)."""
    from spineps_dask.training.demo import DemoTrainConfig, train_demo_models

    if which not in ("data", "semantic", "instance", "both", "cards", "labeling"):
        raise typer.BadParameter(
            f"must be semantic, instance, both, labeling, data or cards, not {which!r}",
            param_hint="--which",
        )
    options: dict[str, Any] = {
        "iterations": iterations,
        "budget_s": budget_s,
        "n_train": train_phantoms,
        "lr": lr,
        "init_from": None if init_from is None else str(init_from),
    }
    if which == "labeling":
        if features is not None or device != "cpu":
            raise typer.BadParameter(
                "the labelling classifier trains on the CPU at its own size",
                param_hint="--features/--device",
            )
        from spineps_dask.training.labeling import LabelingTrainConfig, train_labeling

        if init_from is not None and not any(init_from.glob("*.ckpt")):
            raise typer.BadParameter(f"{init_from} holds no *.ckpt", param_hint="--init-from")
        lab = LabelingTrainConfig(seed=seed, threads=threads).with_options(**options)
        train_labeling(out / "labeling", lab, cache=out / ".cache")
        return
    if init_from is not None and not (init_from / "fold_0" / "checkpoint_final.pth").is_file():
        raise typer.BadParameter(
            f"{init_from} holds no fold_0/checkpoint_final.pth", param_hint="--init-from"
        )
    cfg = DemoTrainConfig(seed=seed, threads=threads)
    cfg = cfg.with_options(
        **options,
        n_random_looks=random_looks,
        patch_norm=patch_norm,
        fov_cut=fov_cut,
        relook=relook,
        textbook_sac=textbook_sac,
        t2w_drawn_sac=t2w_drawn_sac,
        features=_stage_widths(features),
        device=_training_device(device),
    )
    if init_from is not None and which in ("semantic", "both"):
        _check_init_widths(init_from, cfg.sem_features)
    train_demo_models(out, cfg, which=which)


def _stage_widths(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) < 3 or min(widths) < 1:
        raise typer.BadParameter(
            f"{text!r} is not three or more positive widths like 8,16,32,64",
            param_hint="--features",
        )
    return widths


def _training_device(device: str) -> str:
    """The device, refused before any work when torch cannot train on it here."""
    import torch

    try:
        kind = torch.device(device)
    except RuntimeError:
        raise typer.BadParameter(
            f"{device!r} is not a torch device", param_hint="--device"
        ) from None
    if kind.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if kind.type not in ("cpu", "cuda"):
        raise typer.BadParameter(f"{device!r}: use cpu, cuda or cuda:N", param_hint="--device")
    return device


def _check_init_widths(folder: Path, widths: tuple[int, ...]) -> None:
    """Fine-tuning needs the starting weights' network: the same widths per stage."""
    from spineps_dask.errors import ModelError
    from spineps_dask.models.nnunet_folder import folder_widths

    try:
        theirs = folder_widths(folder)
    except ModelError as err:
        raise typer.BadParameter(str(err), param_hint="--init-from") from err
    if theirs != tuple(widths):
        raise typer.BadParameter(
            f"{folder} has widths {','.join(map(str, theirs))}, this run "
            f"{','.join(map(str, widths))} (set --features to match)",
            param_hint="--init-from",
        )


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the main app."""
    app.add_typer(models_app, name="models")
