"""Evaluate a folder of predictions against a folder of references (BIDS derivative names).

The file layer over `spineps_dask.metrics` (arrays in, tables out) and `spineps_dask.io`
(NIfTI, BIDS names, atomic files): the ``eval`` command and the demo's scoring call it.

Masks pair by scan: ``<stem>_[mod-X_]seg-spine_msk.nii.gz`` (semantic) and ``..._seg-vert_msk``
(instance) in each folder, matched on the scan key (every entity but ``seg`` and ``mod``, so a
reference without ``mod-T2w`` still pairs). Each kind of mask found on both sides is scored
(folders of semantic masks alone are scored on the global rows). One scan failing (nothing to
pair, other label scheme, other grid) is reported and the rest are still evaluated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spineps_dask.errors import InputError, SpinepsDaskError
from spineps_dask.io.atomic import write_file
from spineps_dask.io.bids import parse_scan_name
from spineps_dask.io.nifti import load_volume
from spineps_dask.metrics.tables import evaluate_subject, summary_markdown

logger = logging.getLogger(__name__)

_KINDS = {"spine": "semantic", "vert": "instance"}


@dataclass(frozen=True)
class MaskPair:
    """The four mask files of one scan (``None`` where a file is missing)."""

    subject: str
    pred_semantic: Path | None
    pred_instance: Path | None
    ref_semantic: Path | None
    ref_instance: Path | None


def _scan_masks(folder: Path) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """Masks by scan key (``seg`` and ``mod`` are not part of it), and names not understood."""
    found: dict[str, dict[str, Path]] = {}
    bad: dict[str, str] = {}
    for path in sorted(folder.rglob("*_seg-*_msk.nii*")):
        try:
            name = parse_scan_name(path)
        except InputError as exc:
            bad[path.name] = str(exc)
            continue
        entities = dict(name.extra)
        kind = _KINDS.get(entities.get("seg", ""))
        if kind is None:
            continue
        found.setdefault(name.key, {})[kind] = path
    return found, bad


def pair_masks(pred_dir: str | os.PathLike, ref_dir: str | os.PathLike) -> list[MaskPair]:
    """Pair prediction and reference masks of every scan found in either folder.

    Raises
    ------
    InputError
        A folder does not exist, or no reference mask is found at all.
    """
    pred_dir, ref_dir = Path(pred_dir), Path(ref_dir)
    for folder in (pred_dir, ref_dir):
        if not folder.is_dir():
            raise InputError(f"no such folder: {folder}")
    preds, _ = _scan_masks(pred_dir)
    refs, bad = _scan_masks(ref_dir)
    for fname, why in bad.items():
        logger.warning("skipping reference %s: %s", fname, why)
    if not refs:
        raise InputError(
            f"no reference masks (*_seg-spine_msk.nii.gz / *_seg-vert_msk.nii.gz) in {ref_dir}"
        )
    pairs = []
    for key in sorted(set(preds) | set(refs)):
        p, r = preds.get(key, {}), refs.get(key, {})
        pairs.append(
            MaskPair(
                subject=key,
                pred_semantic=p.get("semantic"),
                pred_instance=p.get("instance"),
                ref_semantic=r.get("semantic"),
                ref_instance=r.get("instance"),
            )
        )
    return pairs


def _labels(path: Path, *, subject: str) -> tuple[np.ndarray, np.ndarray]:
    vol = load_volume(path)
    data = np.asarray(vol.data)
    if not np.issubdtype(data.dtype, np.integer):
        rounded = np.rint(data)
        if not np.array_equal(rounded, data):
            raise InputError(
                f"{path.name} holds non-integer values; a label mask is needed",
                subject=subject,
                step="evaluate",
            )
        data = rounded
    if data.min(initial=0) < 0:
        raise InputError(f"{path.name} holds negative labels", subject=subject, step="evaluate")
    return data.astype(np.int32), vol.affine


def evaluate_pair(pair: MaskPair, **context: Any) -> pd.DataFrame:
    """Tidy metrics table of one scan (see :func:`~spineps_dask.metrics.tables.evaluate_subject`):
    whatever kind of mask is on both sides is scored (semantic masks alone give the global
    rows, instance masks alone the instance rows).

    Raises
    ------
    InputError
        No kind of mask is on both sides; a mask is unreadable, not a label map, on another
        grid than the first reference, or in another label scheme.
    """
    files = {
        "predicted semantic mask": pair.pred_semantic,
        "predicted instance mask": pair.pred_instance,
        "reference semantic mask": pair.ref_semantic,
        "reference instance mask": pair.ref_instance,
    }
    kinds = [
        kind
        for kind in ("semantic", "instance")
        if files[f"predicted {kind} mask"] is not None and files[f"reference {kind} mask"]
    ]
    if not kinds:
        missing = [what for what, path in files.items() if path is None]
        raise InputError(
            f"missing {', '.join(missing)}: no kind of mask is on both sides",
            subject=pair.subject,
            step="evaluate",
        )
    used = {what: path for what, path in files.items() if path and what.split()[1] in kinds}
    arrays, affines = {}, {}
    for what, path in used.items():
        arrays[what], affines[what] = _labels(path, subject=pair.subject)
    first = next(w for w in used if w.startswith("reference"))
    for what, affine in affines.items():
        if arrays[what].shape != arrays[first].shape or not np.allclose(
            affine, affines[first], atol=1e-3
        ):
            raise InputError(
                f"{what} is on another voxel grid than the {first} "
                f"(shape {arrays[what].shape}); resample it to the reference first",
                subject=pair.subject,
                step="evaluate",
            )
    spacing = tuple(float(s) for s in np.sqrt((affines[first][:3, :3] ** 2).sum(axis=0)))
    return evaluate_subject(
        arrays.get("predicted semantic mask"),
        arrays.get("predicted instance mask"),
        arrays.get("reference semantic mask"),
        arrays.get("reference instance mask"),
        spacing=spacing,
        subject=pair.subject,
        **context,
    )


def evaluate_folders(
    pred_dir: str | os.PathLike,
    ref_dir: str | os.PathLike,
    *,
    on_subject: Callable[[str, str | None], None] | None = None,
    **context: Any,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Evaluate every paired scan; return the tidy table and ``{subject: error}`` for failures.

    ``on_subject(subject, error_or_None)`` is called after each scan (for progress display).
    """
    tables, errors = [], {}
    for pair in pair_masks(pred_dir, ref_dir):
        try:
            tables.append(evaluate_pair(pair, **context))
            error = None
        except SpinepsDaskError as exc:
            error = str(exc)
            errors[pair.subject] = error
            logger.info("not evaluated: %s", error)  # returned to the caller, who reports it
        if on_subject is not None:
            on_subject(pair.subject, error)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return table, errors


def write_summary(summary: pd.DataFrame, stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` (atomic) and return both paths."""
    stem = Path(stem)
    csv = write_file(summary.to_csv(index=False), stem.with_suffix(".csv"))
    md = write_file(summary_markdown(summary), stem.with_suffix(".md"))
    return csv, md
