"""Install model folders into the models directory, safely against crashes and other processes.

Every install, from a download (``download.py``), a zip or a folder, goes the same way:

1. take a lock beside the target (``.<name>.lock``), so processes installing the same model
   (a job array starting at once) wait for each other instead of racing;
2. if the target folder exists and validates, stop: it is installed;
3. fill a hidden staging folder beside it (``.<name>.partial-*``: hidden from ``models list``,
   never named like an installed model), extract, and find the model folder inside;
4. check it as ``models check`` does (:func:`check_model_folder` with the expected kind);
5. write ``.spineps-dask-install.json`` (source, version, SHA-256) and rename it into place
   (one atomic rename on the same file system).

An interrupted install leaves at most a hidden staging folder, which the next install of that
model removes. Where the file system has no locks, the atomic rename still decides: a process
that finds the target taken validates the winner's folder and uses it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spineps_dask._version import __version__
from spineps_dask.config import folder_version, models_dir
from spineps_dask.errors import ModelError
from spineps_dask.models._archive import extract_archive, model_root
from spineps_dask.models.folders import ModelFolder, check_model_folder, load_model_folder
from spineps_dask.models.registry import (
    PublishedModel,
    published_by_archive,
    published_by_installed_name,
    published_model,
)

# Windows has no flock; there the atomic rename alone decides between processes.
fcntl = None if sys.platform == "win32" else importlib.import_module("fcntl")

logger = logging.getLogger(__name__)

#: Written into each installed folder: where it came from, its version and the archive's hash.
RECORD_NAME = ".spineps-dask-install.json"

#: ``fill(staging) -> (model folder inside staging, record fields)``.
Filler = Callable[[Path], tuple[Path, dict[str, Any]]]


@dataclass(frozen=True)
class Installed:
    """An installed model folder; ``already`` when it was there before and only checked."""

    path: Path
    model: ModelFolder
    published: PublishedModel | None
    already: bool


def install_model(
    source: str | Path,
    *,
    models: str | Path | None = None,
    name: str | None = None,
    folder_name: str | None = None,
    load: bool = False,
) -> Installed:
    """Install a model zip or folder (copied from a machine with internet) into the models dir.

    Parameters
    ----------
    source
        A zip archive (a published one such as ``t2w.zip``, or any zipped model folder) or a
        model folder.
    models
        The models directory (default: ``$SPINEPS_SEGMENTOR_MODELS``, else the default one).
    name
        The published model it is (``t2w``, ...): installs under the reference's folder name
        and insists on that model's kind. Default: guessed from the archive's file name
        (``t2w.zip``) or the folder's name (``T2w_semantic_v1.0.9``).
    folder_name
        Install under this sub-folder name instead.
    load
        Also load the weights on the CPU, as ``models check`` does.

    Raises
    ------
    ModelError
        When ``source`` is neither a zip nor a folder, is unsafe or broken, does not validate,
        or the target exists and is not a valid model folder.
    """
    source = Path(source).expanduser()
    is_zip = source.is_file() and zipfile.is_zipfile(source)
    if not is_zip and not source.is_dir():
        what = "not a zip archive" if source.exists() else "does not exist"
        raise ModelError(f"{source} {what}; give a model zip (e.g. t2w.zip) or a model folder")
    published: PublishedModel | None
    if name is not None:
        published = published_model(name)
    elif is_zip:
        published = published_by_archive(source.name)
    else:
        published = published_by_installed_name(source.name)
    target = folder_name or (published.installed_name if published else _stem(source))

    def fill(staging: Path) -> tuple[Path, dict[str, Any]]:
        extracted = staging / "extracted"
        if is_zip:
            extract_archive(source, extracted)
            return model_root(extracted), {"source": str(source), "sha256": _sha256(source)}
        shutil.copytree(source, extracted / source.name)
        return model_root(extracted), {"source": str(source)}

    return install_into(
        install_root(models), target, fill, published=published, load=load, origin=str(source)
    )


def install_into(
    root: Path,
    target_name: str,
    fill: Filler,
    *,
    published: PublishedModel | None,
    load: bool,
    origin: str,
) -> Installed:
    """Steps 1-5 of the module docstring: ``fill`` puts the model into a staging folder."""
    _check_folder_name(target_name)
    kind = published.kind if published else None
    target = root / target_name
    if target.exists():  # installed: nothing to write, so read-only models directories work
        return _existing(target, published)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _lock(root, target_name) as locked:
            if target.exists():
                return _existing(target, published)
            if locked:
                _remove_stale_staging(root, target_name)
            staging = Path(tempfile.mkdtemp(prefix=f".{target_name}.partial-", dir=root))
            try:
                folder, record = fill(staging)
                check_model_folder(folder, kind=kind, load=load)
                _write_record(folder, published, record)
                try:
                    folder.rename(target)
                except OSError:
                    if not target.exists():
                        raise
                    logger.info("%s was installed by another process meanwhile", target)
                    return _existing(target, published)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise ModelError(
            f"{origin}: not installed ({err}); check that the models directory {root} is "
            "writable and has space, or choose another with --models or $SPINEPS_SEGMENTOR_MODELS"
        ) from err
    logger.info("installed %s", target)
    return Installed(target, load_model_folder(target), published, already=False)


def model_version(folder: str | Path) -> str:
    """The version of a model folder: the published release (``v1.0.9``) when it is one, else
    ``@`` and a hash of its config and weight files (``@1a2b3c4d``, as in run manifests)."""
    folder = Path(folder)
    record = read_record(folder)
    if record.get("version"):
        return str(record["version"])
    published = published_by_installed_name(folder.name)
    if published is not None:
        return published.version
    return "@" + folder_version(folder).rsplit("@", 1)[1]


def read_record(folder: str | Path) -> dict[str, Any]:
    """The install record of a folder (``{}`` for folders installed by hand or unreadable)."""
    try:
        record = json.loads((Path(folder) / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def install_root(models: str | Path | None = None) -> Path:
    """Where models install: ``models`` when given, else :func:`spineps_dask.config.models_dir`
    (``$SPINEPS_SEGMENTOR_MODELS`` or the default); it need not exist yet."""
    return Path(models).expanduser() if models is not None else models_dir()


def _existing(target: Path, published: PublishedModel | None) -> Installed:
    try:
        model = check_model_folder(target, kind=published.kind if published else None)
    except ModelError as err:
        raise ModelError(
            f"{target} exists but is not a valid model folder ({err}); remove it "
            f"(rm -r '{target}') and install again"
        ) from err
    return Installed(target, model, published, already=True)


@contextmanager
def _lock(root: Path, target_name: str) -> Iterator[bool]:
    """Hold an exclusive lock on ``root/.<target_name>.lock``; yields whether locking works."""
    path = root / f".{target_name}.lock"
    try:
        # 0o666 less the umask: with umask 002 the group can lock a shared models directory too.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file; flock works on a read-only descriptor
        fd = os.open(path, os.O_RDONLY)
    try:
        locked = _acquire(fd, target_name)
        try:
            yield locked
        finally:
            if locked and fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, target_name: str) -> bool:
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # warning: shown by the quiet CLI too, or a waiting download looks hung (issue 21)
        logger.warning("waiting for another process that is installing %s", target_name)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:  # e.g. Lustre mounted without flock: the rename still decides
        logger.warning("no file lock for %s (%s); relying on the atomic rename", target_name, err)
        return False
    return True


def _remove_stale_staging(root: Path, target_name: str) -> None:
    # Only called under the lock: any staging folder of this model is from a process that died.
    for stale in root.glob(f".{target_name}.partial-*"):
        logger.info("removing %s left by an interrupted install", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _write_record(folder: Path, published: PublishedModel | None, fields: dict[str, Any]) -> None:
    record = {
        "name": published.name if published else None,
        "version": published.version if published else None,
        **fields,
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "installed_by": f"spineps-dask {__version__}",
    }
    (folder / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _check_folder_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ModelError(
            f"cannot install as {name!r}: a model folder name is one visible path component"
        )


def _stem(source: Path) -> str:
    return source.name.removesuffix(".zip") if source.is_file() else source.name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
