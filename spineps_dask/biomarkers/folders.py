"""Biomarkers of every scan in a folder of SPINEPS masks (BIDS derivative names).

Masks pair by scan like the ``eval`` command's: ``<stem>_[mod-X_]seg-spine_msk.nii.gz``
(semantic) with ``<stem>_[mod-X_]seg-vert_msk.nii.gz`` (instance). A scan that fails (missing
partner, other grid) is reported by name and the others are still measured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from spineps_dask.biomarkers.levels import COLUMNS, BiomarkerSettings, level_biomarkers
from spineps_dask.errors import InputError, SpinepsDaskError
from spineps_dask.io.bids import parse_scan_name
from spineps_dask.io.nifti import load_volume

logger = logging.getLogger(__name__)

_KINDS = {"spine": "semantic", "vert": "instance"}


def find_mask_pairs(folder: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """Scan id -> ``{'semantic': path, 'instance': path}`` (a key is absent when its file is).

    Raises
    ------
    InputError
        The folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no such folder: {folder}")
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.rglob("*_seg-*_msk.nii*")):
        try:
            name = parse_scan_name(path)
        except InputError as exc:
            logger.warning("skipping %s: %s", path.name, exc)
            continue
        kind = _KINDS.get(dict(name.extra).get("seg", ""))
        if kind is None:
            continue
        found.setdefault(name.key, {})[kind] = path
    return found


def biomarkers_folder(
    folder: str | os.PathLike,
    *,
    settings: BiomarkerSettings | None = None,
    on_subject: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Tidy biomarker table of every scan in ``folder``, and the scans that failed (with why)."""
    tables, errors = [], {}
    for subject, files in find_mask_pairs(folder).items():
        missing = sorted({"semantic", "instance"} - set(files))
        if missing:
            errors[subject] = f"missing {' and '.join(missing)} mask"
            continue
        try:
            sem, inst = (load_volume(files[k]) for k in ("semantic", "instance"))
            sem = sem.with_data(np.rint(sem.data).astype(np.int32))
            inst = inst.with_data(np.rint(inst.data).astype(np.int32))
            tables.append(level_biomarkers(sem, inst, subject=subject, settings=settings))
        except SpinepsDaskError as exc:
            errors[subject] = str(exc)
            continue
        if on_subject is not None:
            on_subject(subject)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COLUMNS))
    return table, errors
