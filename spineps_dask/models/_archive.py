"""Model archives: refuse unsafe members, extract, and find the model folder inside.

Only ``models/install.py`` uses this; it extracts into a staging folder that it moves into place
once the model validates.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from spineps_dask.errors import ModelError
from spineps_dask.models.config import CONFIG_NAME

# Resource forks that macOS's "Compress" adds beside every file; never part of a model.
_IGNORED_TOP = "__MACOSX"


def extract_archive(archive: Path, dest: Path) -> None:
    """Check every member of the zip ``archive``, then extract it into ``dest``.

    Raises
    ------
    ModelError
        When the file is not a zip, is truncated or fails its CRC checks, or has a member with an
        absolute path, a ``..`` component or a symbolic link (nothing is extracted then).
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if _top(m.filename) != _IGNORED_TOP]
            unsafe = [m.filename for m in members if _unsafe(m)]
            if unsafe:
                raise ModelError(
                    f"{archive}: refusing an archive with absolute paths, '..' or symbolic links "
                    f"in it ({unsafe[:5]}); a model archive holds only plain files and folders"
                )
            # extract() re-checks each member's CRC as it writes, so a corrupt member fails here.
            for member in members:
                zf.extract(member, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as err:
        raise ModelError(
            f"{archive} is not a complete zip archive ({err}); download it again"
        ) from err


def model_root(extracted: Path) -> Path:
    """The model folder inside an extracted archive.

    Archives hold the model at their top or wrap it in folders (``t2w.zip`` -> ``T2w_semantic/``):
    while a folder holds no ``inference_config.json`` and nothing but one sub-folder, the model
    is in that sub-folder. :func:`load_model_folder` then checks that the tree under it has
    exactly one ``inference_config.json`` (which may sit deeper, e.g. in an nnU-Net plans folder).

    Raises
    ------
    ModelError
        When the archive holds no ``inference_config.json`` at all.
    """
    if next(extracted.rglob(CONFIG_NAME), None) is None:
        found = sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*"))
        raise ModelError(
            f"the archive holds no {CONFIG_NAME}, so it is not a SPINEPS model folder "
            f"(it has {found[:8]}{' ...' if len(found) > 8 else ''})"
        )
    folder = extracted
    while not (folder / CONFIG_NAME).is_file():
        entries = [p for p in folder.iterdir() if p.name != _IGNORED_TOP]
        if len(entries) != 1 or not entries[0].is_dir():
            break
        folder = entries[0]
    return folder


def _top(name: str) -> str:
    return name.replace("\\", "/").split("/", 1)[0]


def _unsafe(member: zipfile.ZipInfo) -> bool:
    name = member.filename.replace("\\", "/")
    path = PurePosixPath(name)
    is_link = stat.S_ISLNK(member.external_attr >> 16)
    # "C:" at the start is an absolute Windows path even with forward slashes.
    drive = len(name) > 1 and name[1] == ":"
    return path.is_absolute() or drive or ".." in path.parts or is_link
