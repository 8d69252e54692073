"""Reference (ground-truth) masks beside the scans, ingested so a run can score itself.

A BIDS derivatives folder (``derivatives/groundtruth`` for phantoms, a rater's folder for
real data) holding ``<scan stem>_mod-T2w_seg-spine_msk.nii.gz`` / ``..._seg-vert_msk.nii.gz``
is copied into the store as ``ref_semantic`` / ``ref_instance``, each with the SHA-256 of its
voxels (``digest``); the reduce step of a run then adds that subject's Dice/ASSD/PQ rows to the
cohort's metric table. References added or changed after a subject was segmented are scored by
the next run without running a model again: it compares `reference_digest` with the digest its
``score`` manifest row recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TypedDict

import numpy as np

from spineps_dask.errors import SpinepsDaskError
from spineps_dask.io.export import scan_name_of
from spineps_dask.io.names import IMAGE, REF_INSTANCE, REF_SEMANTIC
from spineps_dask.io.nifti import load_volume
from spineps_dask.io.outputs import INSTANCE, SEMANTIC
from spineps_dask.io.store import CohortStore
from spineps_dask.labels import VALID_INSTANCE, VALID_SEMANTIC, check_labels

logger = logging.getLogger(__name__)

#: Store name -> BIDS derivative (description, extension) of each reference mask.
_DERIVATIVES = {REF_SEMANTIC: SEMANTIC, REF_INSTANCE: INSTANCE}


class ReferenceSummary(TypedDict):
    """What `ingest_references` did: subjects ingested, without files, refused (and why)."""

    ingested: list[str]
    missing: list[str]
    failed: dict[str, str]
    unchanged: list[str]


def ingest_references(derivatives: str | os.PathLike, store: CohortStore) -> ReferenceSummary:
    """Copy every subject's reference masks found under ``derivatives`` into the store.

    Returns ``{"ingested": [...], "unchanged": [...], "missing": [...], "failed": {subject:
    reason}}``; ``unchanged``: the store already holds these very voxels (not written again).
    A reference on another grid than its scan, or holding labels outside the SPINEPS scheme
    (another dataset's ids would silently score zero), is refused with the reason; the
    subject is still segmented, just not scored.
    """
    valid = {REF_SEMANTIC: VALID_SEMANTIC, REF_INSTANCE: VALID_INSTANCE}
    root = Path(derivatives)
    out: ReferenceSummary = {"ingested": [], "missing": [], "failed": {}, "unchanged": []}
    for subject in store.subjects():
        if not store.has_volume(subject, IMAGE):
            continue
        name = scan_name_of(store, subject)
        anat = root / f"sub-{name.sub}" / (f"ses-{name.ses}" if name.ses else "") / "anat"
        paths = {key: anat / name.derivative(*desc) for key, desc in _DERIVATIVES.items()}
        if not all(p.is_file() for p in paths.values()):
            out["missing"].append(subject)
            continue
        try:
            image = store.read_attrs(subject, IMAGE)
            vols = {key: load_volume(path) for key, path in paths.items()}
            for key, vol in vols.items():  # both checked before either is written
                want = tuple(image["shape"])
                if tuple(vol.shape) != want:
                    fname = paths[key].name
                    raise SpinepsDaskError(f"{fname} has shape {vol.shape}, its scan {want}")
                check_labels(vol.data, valid[key], what=paths[key].name, subject=subject)
            digests = {key: voxel_digest(vol.data) for key, vol in vols.items()}
            if all(_stored_digest(store, subject, k) == d for k, d in digests.items()):
                out["unchanged"].append(subject)
                continue
            for key, vol in vols.items():
                store.write_volume(
                    subject, key, vol, label=True, source=str(paths[key]), digest=digests[key]
                )
            out["ingested"].append(subject)
        except SpinepsDaskError as exc:
            out["failed"][subject] = str(exc)
            logger.info("reference masks of %s not used: %s", subject, exc)  # in the summary
    return out


def voxel_digest(data: np.ndarray) -> str:
    """SHA-256 of a mask's voxels, shape and dtype: equal digests, equal masks."""
    arr = np.ascontiguousarray(data)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _stored_digest(store: CohortStore, subject: str, name: str) -> str | None:
    if not store.has_volume(subject, name):
        return None
    return store.read_attrs(subject, name).get("digest")


def reference_digest(store: CohortStore, subject: str) -> str | None:
    """One digest of a subject's two reference masks, or None when it has not both.

    References stored before masks carried a ``digest`` are named by their attributes
    (source file and geometry), so they too are scored once and then left alone.
    """
    if not all(store.has_volume(subject, r) for r in _DERIVATIVES):
        return None
    parts = []
    for name in sorted(_DERIVATIVES):
        attrs = store.read_attrs(subject, name)
        parts.append(attrs.get("digest") or json.dumps(attrs, sort_keys=True, default=str))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
