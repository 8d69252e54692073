"""A tiny cohort segmented for real, built once per test session and shared read-only.

Two small lumbar phantoms with ground truth (so metric tables exist) plus one axial scan that
ingests but cannot be segmented (a failed subject with a reason). Report and plot tests read it;
none of them may write into it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spineps_dask.config import RunConfig
from spineps_dask.distributed.model_cache import WorkerSetup
from spineps_dask.distributed.resume import run_store
from spineps_dask.geometry import Volume
from spineps_dask.io.cohort import ingest
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.io.references import ingest_references
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort
from tests.clusters import in_process_client

GOOD = ("sub-001", "sub-002")
BAD = "sub-axial"
_BUILT: dict[str, Path] = {}


def small_cohort_store(tmp_path_factory) -> Path:
    """Path of the shared store (built on first use: ingest, references, one run)."""
    if "store" not in _BUILT:
        root = tmp_path_factory.mktemp("small_cohort")
        bids = root / "bids"
        write_bids_cohort(bids, subjects=len(GOOD), seed=900, region="lumbar")
        src = load_volume(bids / GOOD[0] / "anat" / f"{GOOD[0]}_T2w.nii.gz")
        axial = np.diag([0.8, 0.8, 4.0, 1.0])  # thick slices along S-I: an axial stack
        save_volume(Volume(src.data, axial), bids / BAD / "anat" / f"{BAD}_T2w.nii.gz")
        path = root / "cohort.zarr"
        ingest(bids, str(path))
        store = CohortStore(str(path), mode="a")
        ingest_references(bids / GROUNDTRUTH, store)
        with in_process_client() as client:
            client.register_plugin(WorkerSetup(threads=1))
            run_store(client, store, RunConfig(n4=False, cutouts_per_task=2, snapshot=True))
        _BUILT["store"] = path
    return _BUILT["store"]
