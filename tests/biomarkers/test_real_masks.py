"""Biomarkers on the real SPINEPS-style masks shipped with tptbox (skipped without it).

These crops have no known sizes, so the checks are self-consistency: whole levels are measured,
volumes are the voxel counts, and every height fits inside the structure's extent.
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest

from spineps_dask.biomarkers import level_biomarkers
from spineps_dask.geometry import Volume
from spineps_dask.io.nifti import load_volume
from spineps_dask.labels import ENDPLATE_OFFSET, VERTEBRA_IDS, Semantic

_SAMPLES = {
    "mri": ("sample_mri", "sub-mri_seg-subreg_label-6_msk", "sub-mri_seg-vert_label-6_msk"),
    "ct": ("sample_ct", "sub-ct_seg-subreg_label-22_msk", "sub-ct_seg-vert_label-22_msk"),
}


def _load(name: str) -> tuple[Volume, Volume]:
    try:
        base = importlib.resources.files("TPTBox") / "tests"
    except ModuleNotFoundError:
        pytest.skip("tptbox is not installed (test extra)")
    folder, sem_name, inst_name = _SAMPLES[name]
    sem = load_volume(base / folder / f"{sem_name}.nii.gz")
    inst = load_volume(base / folder / f"{inst_name}.nii.gz")
    return sem.with_data(sem.data.astype(np.uint8)), inst.with_data(inst.data.astype(np.uint16))


@pytest.mark.parametrize(("name", "level"), [("mri", "C6"), ("ct", "L3")])
def test_real_crop_whole_body_is_measured_consistently(name: str, level: str) -> None:
    """The crop's one whole body: volume from its corpus voxels plus endplates on it, heights
    within its size. Endplate labels name the disc they face (200+X on both sides of disc
    100+X), so the body's endplates are among 200+X and 200+(vertebra above)."""
    sem, inst = _load(name)
    df = level_biomarkers(sem, inst, subject=name)
    body = df[(df.level == level) & (df.structure == "body")].set_index("measure").value
    vid = VERTEBRA_IDS[level]
    corpus = np.isin(sem.data, (Semantic.CORPUS, Semantic.CORPUS_BORDER))
    own = (inst.data == vid) & corpus
    plates = np.isin(inst.data, (ENDPLATE_OFFSET + vid, ENDPLATE_OFFSET + vid - 1))
    voxel_mm3 = np.prod(sem.spacing)
    assert own.sum() * voxel_mm3 <= body["volume_mm3"] <= (own | plates).sum() * voxel_mm3
    voxels = own | plates
    extent = np.ptp(np.argwhere(voxels), axis=0).max() * max(sem.spacing) + max(sem.spacing)
    for which in ("anterior", "middle", "posterior"):
        assert 5.0 < body[f"height_{which}_mm"] < extent, which
