"""Reference (ground-truth) masks beside the scans, ingested so a run can score itself.

A BIDS derivatives folder (``derivatives/groundtruth`` for phantoms, a rater's folder for
real data) holding ``<scan stem>_mod-T2w_seg-spine_msk.nii.gz`` / ``..._seg-vert_msk.nii.gz``
is copied into the store as ``ref_semantic`` / ``ref_instance``; the reduce step of a run then
adds that subject's Dice/ASSD/PQ rows to the cohort's metric table.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TypedDict

from spineps_dask.errors import SpinepsDaskError
from spineps_dask.io.cohort import not_a_regular_file
from spineps_dask.io.export import scan_name_of
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


class ReferenceSummary(TypedDict):
    """What `ingest_references` did: subjects ingested, without files, refused (and why)."""

    ingested: list[str]
    missing: list[str]
    failed: dict[str, str]


def ingest_references(
    derivatives: str | os.PathLike, store: CohortStore, *, limits: ScanLimits | None = None
) -> ReferenceSummary:
    """Copy every subject's reference masks found under ``derivatives`` into the store.

    Returns ``{"ingested": [...], "missing": [...], "failed": {subject: reason}}``. A reference
    on another grid than its scan (known from its header, before its voxels are read), over
    the size limit of a scan (``limits``, as `ingest`), not a regular file, or holding labels
    outside the SPINEPS scheme (another dataset's ids would silently score zero), is refused
    with the reason; the subject is still segmented, just not scored.
    """
    limits = limits or ScanLimits()
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        return _ingest_references(Path(derivatives), store, limits)


def _ingest_references(root: Path, store: CohortStore, limits: ScanLimits) -> ReferenceSummary:
    valid = {REF_SEMANTIC: VALID_SEMANTIC, REF_INSTANCE: VALID_INSTANCE}
    out: ReferenceSummary = {"ingested": [], "missing": [], "failed": {}}
    for subject in store.subjects():
        if not store.has_volume(subject, IMAGE):
            continue
        name = scan_name_of(store, subject)
        anat = root / f"sub-{name.sub}" / (f"ses-{name.ses}" if name.ses else "") / "anat"
        paths = {key: anat / name.derivative(*desc) for key, desc in _DERIVATIVES.items()}
        if not all(os.path.lexists(p) for p in paths.values()):
            out["missing"].append(subject)
            continue
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
                check_labels(vol.data, valid[key], what=paths[key].name, subject=subject)
            for key, vol in vols.items():
                store.write_volume(subject, key, vol, label=True, source=str(paths[key]))
            out["ingested"].append(subject)
        except SpinepsDaskError as exc:
            out["failed"][subject] = str(exc)
            logger.warning("reference masks of %s not used: %s", subject, exc)
    return out
