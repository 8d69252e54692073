"""Shared fixtures: the real sample masks shipped in the tptbox wheel."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest

from spineps_dask.io.nifti import load_volume

_SAMPLES = {
    "mri": (
        "sample_mri",
        "sub-mri_seg-subreg_label-6_msk.nii.gz",
        "sub-mri_seg-vert_label-6_msk.nii.gz",
    ),
    "ct": (
        "sample_ct",
        "sub-ct_seg-subreg_label-22_msk.nii.gz",
        "sub-ct_seg-vert_label-22_msk.nii.gz",
    ),
}


def load_sample(name: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(semantic, instance, spacing) of a tptbox sample; skips the test without tptbox."""
    try:
        base = importlib.resources.files("TPTBox") / "tests"
    except ModuleNotFoundError:
        pytest.skip("tptbox is not installed (test extra)")
    folder, sem_name, inst_name = _SAMPLES[name]
    sem = load_volume(base / folder / sem_name)
    inst = load_volume(base / folder / inst_name)
    return sem.data.astype(np.uint8), inst.data.astype(np.uint16), sem.spacing


@pytest.fixture(params=["mri", "ct"])
def real_sample(request):
    """Real MRI (ids 5-7) and CT (L2-L4) crops with semantic and instance masks."""
    return load_sample(request.param)
