"""The steps on the real samples tptbox ships: T2w MRI (ids 5-7, C5-C7 by number; the
anatomy is the thoracolumbar junction, benchmarks/real_crop_anatomy.py) and CT (L2-L4), P-I-R,
1.5 mm.

The instance model is replaced by oracle predictions cut from the reference instance mask, so
these tests check the centre search, cutout geometry, merge and post-processing against the
reference's own masks, not a model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spineps_dask.pipeline import (
    CutoutPrediction,
    cutout_targets,
    find_centres,
    label_vertebrae,
    make_cutouts,
    merge_predictions,
    relabel,
)
from spineps_dask.pipeline.cutouts import crop_padded
from spineps_dask.pipeline.postprocess import (
    assign_leftovers,
    attach_discs_endplates,
    remove_outside_spine,
)

_SPEC = importlib.util.find_spec("TPTBox")
pytestmark = pytest.mark.skipif(_SPEC is None, reason="tptbox (test extra) not installed")


# folder, subject/label part of the file names, reference vertebrae bottom -> top
SAMPLES = {
    "mri": ("sample_mri", "sub-mri_seg-{}_label-6_msk.nii.gz", [7, 6, 5]),
    "ct": ("sample_ct", "sub-ct_seg-{}_label-22_msk.nii.gz", [23, 22, 21]),
}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def sample(request) -> tuple[np.ndarray, np.ndarray, list[int]]:
    folder, pattern, bottom_up = SAMPLES[request.param]
    root = Path(_SPEC.origin).parent / "tests" / folder  # type: ignore[union-attr]
    sem = np.asarray(nib.load(root / pattern.format("subreg")).dataobj)
    gt = np.asarray(nib.load(root / pattern.format("vert")).dataobj)
    return sem, gt.astype(np.uint16), bottom_up


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_one_centre_per_vertebral_body_bottom_first(sample):
    """Three bodies (the top one cut by the field of view): three centres, lowest first.

    The CT sample labels the body interior 49 and its rim 50: both count as body."""
    sem, gt, bottom_up = sample
    centres = find_centres(sem)
    assert [int(gt[tuple(np.round(c).astype(int))]) for c in centres] == bottom_up


def test_oracle_predictions_reproduce_reference_instances(sample):
    """Merge + post-processing of oracle cutout predictions match the reference mask."""
    sem, gt, bottom_up = sample
    size = (64, 48, 64)
    preds = []
    for cut in make_cutouts(sem, find_centres(sem), size=size):
        truth = crop_padded(gt, cut.origin, size)
        preds.append(CutoutPrediction.from_cutout(cut, cutout_targets(truth, int(gt[cut.centre]))))
    merged = merge_predictions(preds, sem.shape)
    inst = assign_leftovers(remove_outside_spine(merged, sem), sem)
    labeling = label_vertebrae(inst, sem)
    assert not labeling.anchored  # neither C2 nor the sacrum is in these crops
    # Map merge ids (top -> bottom) to the known anatomy to check geometry, not the anchor.
    final = attach_discs_endplates(relabel(inst, dict(enumerate(bottom_up[::-1], 1))), sem)
    labels = [int(v) for v in np.unique(gt) if v]
    assert len(labels) >= 3
    for label in labels:
        assert _dice(final == label, gt == label) > 0.99, label
