"""Model folders on disk: find them, check them, and say exactly what is wrong.

A model folder holds one ``inference_config.json`` and either an nnU-Net v2 results folder
(semantic model: ``plans.json``, ``dataset.json``, ``fold_K/checkpoint_final.pth``), one
``*weights*.ckpt`` Lightning checkpoint (instance model), or, for the reference's labelling
classifier, ``*.ckpt`` checkpoints (``*val_f1=*valf1-weights.ckpt`` in the published folders).
Layout from ``shared/docs/spineps-reference.md`` ("Model folders").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from spineps_dask.config import DEMO_MODELS, MODELS_ENV, models_dir, models_dir_from_env
from spineps_dask.errors import ModelError
from spineps_dask.models.config import CONFIG_NAME, ModelConfig, load_config, models_root

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its root, its config and where the weights are."""

    path: Path
    config: ModelConfig
    weights: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return self.config.kind


@dataclass(frozen=True)
class ScanEntry:
    """One sub-folder of a models directory: a :class:`ModelFolder` or the reasons it is not."""

    path: Path
    folder: ModelFolder | None
    problems: tuple[str, ...]


def find_config(folder: str | Path) -> Path:
    """The single ``inference_config.json`` under ``folder`` (the reference demands exactly one)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(_not_found(folder))
    found = sorted(folder.rglob(CONFIG_NAME))
    if len(found) != 1:
        raise ModelError(
            f"{folder}: expected exactly one {CONFIG_NAME} in the folder tree, found {len(found)}"
            + (f" ({[str(p) for p in found]})" if found else "")
        )
    return found[0]


def _not_found(folder: Path) -> str:
    """Where a model that is not there was looked for: a name in three places, a path in one."""
    if len(folder.parts) != 1 or folder.is_absolute():
        return f"model folder {folder} does not exist"
    env = models_dir_from_env()
    where = f"{env} (${MODELS_ENV})" if env else f"{models_dir()} (${MODELS_ENV} is not set)"
    demos = ", ".join(sorted(p.name for p in DEMO_MODELS.iterdir() if p.is_dir()))
    return (
        f"no model {str(folder)!r}: looked for a folder of that name here, in the models "
        f"directory {where} and among the demo models ({demos}); "
        "`spineps-dask models list` shows what is installed, `models download` gets more"
    )


def load_model_folder(folder: str | Path, *, kind: str | None = None) -> ModelFolder:
    """Check a model folder and return it; raise one :class:`ModelError` listing every problem.

    Parameters
    ----------
    folder
        The model's root folder.
    kind
        ``'semantic'``, ``'instance'`` or ``'labeling'`` to insist on one kind; ``None`` accepts
        any.
    """
    config_path = find_config(folder)
    config = load_config(config_path)
    if kind is not None and config.kind != kind:
        raise ModelError(
            f"{folder}: is a {config.kind} model (modeltype {config.modeltype!r}), "
            f"but a {kind} model is needed here"
        )
    root = config_path.parent
    if config.kind == "semantic":
        weights, problems = _check_nnunet(root, config)
    elif config.kind == "labeling":
        weights, problems = _check_labeling(root)
    else:
        weights, problems = _check_instance(root)
    if problems:
        raise ModelError(f"{folder}: " + "; ".join(problems))
    return ModelFolder(path=root, config=config, weights=weights)


def check_model_folder(
    folder: str | Path, *, kind: str | None = None, load: bool = False
) -> ModelFolder:
    """:func:`load_model_folder`, and with ``load`` also load the weights on the CPU.

    Loading catches checkpoints that are unsafe to unpickle or do not fit the network.

    Raises
    ------
    ModelError
        Everything that is wrong with the folder.
    """
    mf = load_model_folder(folder, kind=kind)
    if load and mf.kind == "instance":
        from spineps_dask.models.instance import InstanceModel

        InstanceModel.from_folder(folder, device="cpu")
    elif load and mf.kind == "semantic":
        from spineps_dask.models.semantic import SemanticModel

        SemanticModel.from_folder(folder, device="cpu")
    elif load and mf.kind == "labeling":
        from spineps_dask.models.labeling import LabelingModel

        LabelingModel.from_folder(folder, device="cpu")
    return mf


def weight_files(mf: ModelFolder) -> list[Path]:
    """Every checkpoint a model folder's model loads (each fold's for nnU-Net folders)."""
    if mf.kind == "semantic":
        folds = mf.config.available_folds
        return [mf.weights / f"fold_{f}" / "checkpoint_final.pth" for f in folds]
    return [mf.weights]


def check_weights(folder: str | Path, *, kind: str | None = None) -> ModelFolder:
    """:func:`load_model_folder`, and every checkpoint unpickled as the workers will, safely.

    What a run checks before it starts a cluster: a checkpoint holding pickled objects that
    could run code, or no checkpoint at all, is refused here, not on every worker for every
    subject. The tensors are memory-mapped, not read (seconds for published models).

    Raises
    ------
    ModelError
        What is wrong with the folder or with which checkpoint.
    """
    from spineps_dask.models.checkpoint import load_checkpoint

    mf = load_model_folder(folder, kind=kind)
    for path in weight_files(mf):
        if mf.kind == "labeling":  # the reference's option classes, rebuilt as stand-ins
            from spineps_dask.models.labeling import load_labeling_checkpoint

            load_labeling_checkpoint(path, mmap=True)
        else:
            load_checkpoint(path, mmap=True)
    return mf


def scan_models(models: str | Path | None = None) -> list[ScanEntry]:
    """Every sub-folder of the models directory (argument, ``$SPINEPS_SEGMENTOR_MODELS`` or the
    default); hidden folders (downloads in progress) are left out."""
    return scan_folders(models_root(models))


def scan_folders(root: Path) -> list[ScanEntry]:
    """Each visible sub-folder of ``root``: a :class:`ModelFolder` or the reasons it is not one."""
    entries = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            entries.append(ScanEntry(sub, load_model_folder(sub), ()))
        except ModelError as err:
            entries.append(ScanEntry(sub, None, (str(err),)))
    return entries


def find_model(
    name: str, *, models: str | Path | None = None, kind: str | None = None
) -> ModelFolder:
    """A model by path (contains ``/``) or by sub-folder name in the models directory."""
    if "/" in name or Path(name).is_dir():
        return load_model_folder(name, kind=kind)
    root = models_root(models)
    if not (root / name).is_dir():
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise ModelError(f"no model {name!r} in {root}; available: {names}")
    return load_model_folder(root / name, kind=kind)


def _check_nnunet(root: Path, config: ModelConfig) -> tuple[Path, list[str]]:
    plans = sorted(root.rglob("plans.json"))
    if len(plans) != 1:
        return root, [f"expected one nnU-Net plans.json under {root}, found {len(plans)}"]
    results = plans[0].parent
    problems = []
    for fold in config.available_folds:
        ckpt = results / f"fold_{fold}" / "checkpoint_final.pth"
        if not ckpt.is_file():
            problems.append(f"missing {ckpt.relative_to(root)} (available_folds lists fold {fold})")
    dataset = results / "dataset.json"
    if not dataset.is_file():
        problems.append(f"missing {dataset.relative_to(root)}")
        return results, problems
    try:
        ds_labels = json.loads(dataset.read_text(encoding="utf-8"))["labels"]
        nn_indices = {int(v) for v in ds_labels.values() if not isinstance(v, list)} - {0}
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        problems.append(f"{dataset.name} has no usable 'labels' object ({err!r})")
        return results, problems
    cfg_indices = set(config.labels) - {0}
    if nn_indices != cfg_indices:
        problems.append(
            f"label map mismatch: {CONFIG_NAME} labels cover indices {sorted(cfg_indices)} but "
            f"dataset.json has {sorted(nn_indices)}; every network output needs a label"
        )
    return results, problems


def _check_instance(root: Path) -> tuple[Path, list[str]]:
    ckpts = sorted(root.rglob("*weights*.ckpt"))
    if len(ckpts) != 1:
        return root, [
            f"expected exactly one '*weights*.ckpt' checkpoint under {root}, found {len(ckpts)}"
            + (f": {[p.name for p in ckpts]}" if ckpts else "")
        ]
    return ckpts[0], []


def _check_labeling(root: Path) -> tuple[Path, list[str]]:
    # The reference loads the last of its sorted '*val_f1=*valf1-weights.ckpt' matches; any
    # '*.ckpt' is accepted here, the reference's pattern preferred.
    ckpts = sorted(root.rglob("*val_f1=*valf1-weights.ckpt")) or sorted(root.rglob("*.ckpt"))
    if not ckpts:
        return root, [f"no '*.ckpt' checkpoint under {root} (a labelling model needs one)"]
    return ckpts[-1], []


def demo_model(kind: str) -> Path:
    """Folder of the shipped demo ``'semantic'``, ``'instance'`` or ``'labeling'`` model.

    Raises
    ------
    ModelError
        When ``kind`` is unknown or the folder is missing (train it with
        ``spineps-dask models train-demo``).
    """
    if kind not in ("semantic", "instance", "labeling"):
        raise ModelError(
            f"demo model kind must be 'semantic', 'instance' or 'labeling', got {kind!r}"
        )
    folder = DEMO_MODELS / kind
    if not (folder / CONFIG_NAME).is_file():
        raise ModelError(
            f"demo {kind} model missing at {folder}; run "
            f"'spineps-dask models train-demo {DEMO_MODELS}"
            + (" --which labeling'" if kind == "labeling" else "'")
        )
    return folder
