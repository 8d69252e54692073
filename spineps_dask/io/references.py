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

from spineps_dask.errors import SpinepsDaskError
from spineps_dask.io.export import scan_name_of
from spineps_dask.io.nifti import load_volume
from spineps_dask.io.outputs import INSTANCE, SEMANTIC
from spineps_dask.io.store import CohortStore
from spineps_dask.labels import VALID_INSTANCE, VALID_SEMANTIC, check_labels

logger = logging.getLogger(__name__)

REFERENCES = {"ref_semantic": SEMANTIC, "ref_instance": INSTANCE}


def ingest_references(
    derivatives: str | os.PathLike, store: CohortStore
) -> dict[str, list[str] | dict[str, str]]:
    """Copy every subject's reference masks found under ``derivatives`` into the store.

    Returns ``{"ingested": [...], "missing": [...], "failed": {subject: reason}}``. A reference
    on another grid than its scan, or holding labels outside the SPINEPS scheme (another
    dataset's ids would silently score zero), is refused with the reason; the subject is still
    segmented, just not scored.
    """
    valid = {"ref_semantic": VALID_SEMANTIC, "ref_instance": VALID_INSTANCE}
    root = Path(derivatives)
    out: dict = {"ingested": [], "missing": [], "failed": {}}
    for subject in store.subjects():
        if not store.has_volume(subject, "image"):
            continue
        name = scan_name_of(store, subject)
        anat = root / f"sub-{name.sub}" / (f"ses-{name.ses}" if name.ses else "") / "anat"
        paths = {key: anat / name.derivative(*desc) for key, desc in REFERENCES.items()}
        if not all(p.is_file() for p in paths.values()):
            out["missing"].append(subject)
            continue
        try:
            image = store.read_attrs(subject, "image")
            vols = {key: load_volume(path) for key, path in paths.items()}
            for key, vol in vols.items():  # both checked before either is written
                want = tuple(image["shape"])
                if tuple(vol.shape) != want:
                    fname = paths[key].name
                    raise SpinepsDaskError(f"{fname} has shape {vol.shape}, its scan {want}")
                check_labels(vol.data, valid[key], what=paths[key].name, subject=subject)
            for key, vol in vols.items():
                store.write_volume(subject, key, vol, label=True, source=str(paths[key]))
            out["ingested"].append(subject)
        except SpinepsDaskError as exc:
            out["failed"][subject] = str(exc)
            logger.warning("reference masks of %s not used: %s", subject, exc)
    return out
