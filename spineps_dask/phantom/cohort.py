"""Write a BIDS-style phantom cohort: scans, ground-truth derivatives and ``participants.tsv``.

Layout (names from `spineps_dask.io.bids.ScanName.derivative`, as the pipeline writes its own
outputs, so a metrics run can pair prediction and truth by name)::

    OUT/participants.tsv
    OUT/dataset_description.json
    OUT/sub-001/anat/sub-001_T2w.nii.gz
    OUT/derivatives/groundtruth/sub-001/anat/sub-001_mod-T2w_seg-spine_msk.nii.gz
                                           .../sub-001_mod-T2w_seg-vert_msk.nii.gz
                                           .../sub-001_mod-T2w_ctd.json
                                           .../sub-001_mod-T2w_truth.json
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spineps_dask.io.atomic import write_json
from spineps_dask.io.bids import ScanName
from spineps_dask.io.nifti import save_volume
from spineps_dask.io.outputs import write_subject_outputs
from spineps_dask.phantom.generate import Phantom, make_phantom

logger = logging.getLogger(__name__)

GROUNDTRUTH = Path("derivatives") / "groundtruth"
TRUTH = ("truth", ".json")


def subject_seed(seed: int, index: int) -> int:
    """Seed of subject ``index`` in a cohort: independent streams, no overlap between cohorts."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def write_phantom(out_dir: str | Path, phantom: Phantom, name: ScanName) -> Path:
    """Write one phantom's scan and ground truth into a BIDS tree; returns the scan path."""
    out_dir = Path(out_dir)
    anat = Path(f"sub-{name.sub}", *([f"ses-{name.ses}"] if name.ses else []), "anat")
    scan = save_volume(phantom.image, out_dir / anat / f"{name.stem}_{name.suffix}.nii.gz")
    truth_dir = out_dir / GROUNDTRUTH / anat
    vertebrae = {k: v for k, v in phantom.centroids.items() if k < 100}
    write_subject_outputs(
        truth_dir, name, semantic=phantom.semantic, instance=phantom.instance, centroids=vertebrae
    )
    truth = {
        "spec": phantom.spec.summary(),
        "centroids": {str(k): list(v) for k, v in sorted(phantom.centroids.items())},
        "levels": {str(k): v for k, v in phantom.truth.items()},
    }
    write_json(truth, truth_dir / name.derivative(*TRUTH))
    return scan


def write_bids_cohort(
    out_dir: str | Path,
    *,
    subjects: int,
    seed: int,
    on_subject: Callable[[Path], None] | None = None,
    **overrides: object,
) -> list[Path]:
    """Generate ``subjects`` phantoms and write them as a BIDS cohort; returns the scan paths.

    ``overrides`` fix spec fields for every subject (e.g. ``region="lumbar"``);
    ``on_subject`` is called after each subject (progress bars).
    """
    out_dir = Path(out_dir)
    width = max(3, len(str(subjects)))
    rows: list[dict[str, object]] = []
    scans: list[Path] = []
    for i in range(subjects):
        name = ScanName(sub=f"{i + 1:0{width}d}")
        phantom = make_phantom(subject_seed(seed, i), **overrides)
        scans.append(write_phantom(out_dir, phantom, name))
        rows.append({"participant_id": f"sub-{name.sub}", **phantom.spec.summary()})
        logger.debug("wrote %s (seed %s)", name.key, phantom.spec.seed)
        if on_subject is not None:
            on_subject(scans[-1])
    _write_tsv(out_dir / "participants.tsv", rows)
    write_json(
        {"Name": "spineps-dask phantoms", "BIDSVersion": "1.9.0", "DatasetType": "raw"},
        out_dir / "dataset_description.json",
    )
    return scans


def _write_tsv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0]) if rows else ["participant_id"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
