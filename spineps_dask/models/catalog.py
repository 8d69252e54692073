"""What models there are: the shipped demo models, the models directory, and the published
models not installed yet (``spineps-dask models list``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spineps_dask.config import DEMO_MODELS, MODELS_ENV, models_dir, models_dir_from_env
from spineps_dask.models.folders import ScanEntry, scan_folders
from spineps_dask.models.install import model_version, read_record
from spineps_dask.models.registry import PUBLISHED, PublishedModel, published_by_installed_name


@dataclass(frozen=True)
class CatalogEntry:
    """One model folder: where it was found, whether it validates, and its version."""

    source: str
    scan: ScanEntry
    version: str

    @property
    def ok(self) -> bool:
        return self.scan.folder is not None


@dataclass(frozen=True)
class Catalog:
    """The models this installation can use.

    ``installed`` is ``None`` when the models directory does not exist (yet).
    """

    demo_root: Path
    demo: list[CatalogEntry]
    root: Path
    root_origin: str
    installed: list[CatalogEntry] | None
    not_installed: list[PublishedModel]


def catalog(models: str | Path | None = None) -> Catalog:
    """The demo models and the models directory (``models``, ``$SPINEPS_SEGMENTOR_MODELS`` or
    the default), each folder checked; never fails because the directory is missing."""
    if models is not None:
        root, origin = Path(models).expanduser(), "--models"
    elif models_dir_from_env() is not None:
        root, origin = models_dir(), f"${MODELS_ENV}"
    else:
        root, origin = models_dir(), f"default; ${MODELS_ENV} is unset"
    demo = _entries(DEMO_MODELS, "demo")
    installed = _entries(root, "models dir") if root.is_dir() else None
    present = {_published_name(e.scan.path) for e in installed or [] if e.ok}
    missing = [m for m in PUBLISHED.values() if m.name not in present]
    return Catalog(DEMO_MODELS, demo, root, origin, installed, missing)


def _entries(root: Path, source: str) -> list[CatalogEntry]:
    return [CatalogEntry(source, s, model_version(s.path)) for s in scan_folders(root)]


def _published_name(folder: Path) -> str | None:
    name = read_record(folder).get("name")
    if name:
        return str(name)
    published = published_by_installed_name(folder.name)
    return published.name if published else None
