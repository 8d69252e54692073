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
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

import numpy as np

from spineps_dask.errors import SpinepsDaskError
from spineps_dask.io.cohort import not_a_regular_file
from spineps_dask.io.export import scan_name_of
from spineps_dask.io.integrity import intact
from spineps_dask.io.lock import INGEST_WAIT_S, writer_lock
from spineps_dask.io.names import IMAGE, REF_INSTANCE, REF_SEMANTIC
from spineps_dask.io.nifti import load_volume
from spineps_dask.io.outputs import INSTANCE, SEMANTIC
from spineps_dask.io.store import CohortStore
from spineps_dask.io.validate import ScanLimits
from spineps_dask.labels import VALID_INSTANCE, VALID_SEMANTIC, check_labels

logger = logging.getLogger(__name__)

#: Store name -> BIDS derivative (description, extension) of each reference mask.
_DERIVATIVES = {REF_SEMANTIC: SEMANTIC, REF_INSTANCE: INSTANCE}
#: The labels each reference mask may hold (the SPINEPS scheme).
_VALID = {REF_SEMANTIC: VALID_SEMANTIC, REF_INSTANCE: VALID_INSTANCE}


class ReferenceSummary(TypedDict):
    """What `ingest_references` did: subjects ingested, without files, refused (and why)."""

    ingested: list[str]
    missing: list[str]
    failed: dict[str, str]
    unchanged: list[str]


#: What became of one subject's references: ingested, unchanged, missing or failed.
ReferenceOutcome = tuple[str, str, str | None]


def ingest_references(
    derivatives: str | os.PathLike, store: CohortStore, *, limits: ScanLimits | None = None
) -> ReferenceSummary:
    """Copy every subject's reference masks found under ``derivatives`` into the store.

    Returns ``{"ingested": [...], "unchanged": [...], "missing": [...], "failed": {subject:
    reason}}``; ``unchanged``: the store already holds these very voxels, intact (not written
    again; damaged stored references are written again). A reference on another grid than
    its scan (known from its header, before its voxels are read), over the size limit of a
    scan (``limits``, as `ingest`), not a regular file, or holding labels outside the SPINEPS
    scheme (another dataset's ids would silently score zero), is refused with the reason; the
    subject is still segmented, just not scored. The masks are read here, one subject after
    another; `spineps-dask ingest` and `run` read them on a cluster's workers
    (`distributed.ingest.ingest_references_on_cluster`: the same checks and summary).
    """
    limits = limits or ScanLimits()
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        return summarise_references(
            out
            for subject in store.subjects()
            if (out := ingest_subject_references(Path(derivatives), store, subject, limits))
        )


def ingest_subject_references(
    root: Path, store: CohortStore, subject: str, limits: ScanLimits
) -> ReferenceOutcome | None:
    """One subject's reference masks from the derivatives folder ``root`` into the store:
    ``(subject, "ingested" | "unchanged" | "missing" | "failed", reason)``, or None when the
    subject has no scan in the store (nothing to score against)."""
    if not store.has_volume(subject, IMAGE):
        return None
    name = scan_name_of(store, subject)
    anat = root / f"sub-{name.sub}" / (f"ses-{name.ses}" if name.ses else "") / "anat"
    paths = {key: anat / name.derivative(*desc) for key, desc in _DERIVATIVES.items()}
    if not all(os.path.lexists(p) for p in paths.values()):
        return subject, "missing", None
    try:
        for path in paths.values():  # stat only: a FIFO would block the read below
            odd = not_a_regular_file(path)
            if odd:
                raise SpinepsDaskError(f"{path.name} {odd}")
        want = tuple(store.read_attrs(subject, IMAGE)["shape"])
        vols = {
            key: load_volume(path, max_bytes=limits.max_bytes, expect_shape=want)
            for key, path in paths.items()
        }
        for key, vol in vols.items():  # both checked before either is written
            check_labels(vol.data, _VALID[key], what=paths[key].name, subject=subject)
        digests = {key: voxel_digest(vol.data) for key, vol in vols.items()}
        if all(_stored_digest(store, subject, k) == d for k, d in digests.items()):
            return subject, "unchanged", None
        for key, vol in vols.items():
            store.write_volume(
                subject, key, vol, label=True, source=str(paths[key]), digest=digests[key]
            )
    except SpinepsDaskError as exc:
        logger.info("reference masks of %s not used: %s", subject, exc)  # in the summary
        return subject, "failed", str(exc)
    return subject, "ingested", None


def summarise_references(outcomes: Iterable[ReferenceOutcome]) -> ReferenceSummary:
    """The summary of the subjects' outcomes (`ingest_subject_references`), by subject."""
    out: ReferenceSummary = {"ingested": [], "missing": [], "failed": {}, "unchanged": []}
    for subject, what, reason in sorted(outcomes, key=lambda o: o[0]):
        if what == "failed":
            out["failed"][subject] = reason or "refused"
        else:
            out[what].append(subject)  # type: ignore[literal-required]
    return out


def voxel_digest(data: np.ndarray) -> str:
    """SHA-256 of a mask's voxels, shape and dtype: equal digests, equal masks."""
    arr = np.ascontiguousarray(data)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _stored_digest(store: CohortStore, subject: str, name: str) -> str | None:
    """The digest recorded with a stored reference, or None when there is none or the stored
    copy is damaged, so it is written again. Every voxel is checked (not only the chunk
    sizes): ingesting references again is how damage that `verify` found is mended."""
    if not store.has_volume(subject, name):
        return None
    if not intact(store, subject, [name], full=True, then="ingesting it again"):
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
