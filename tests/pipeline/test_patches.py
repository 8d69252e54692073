"""Per-vertebra patches for the labelling classifier (what the reference feeds its model).

Protects: one patch per vertebra of the mask (the sacrum left out), top to bottom, in the
model's orientation and size, z-scored over the non-zero voxels; turning a patch by its
spine angle stands a tilted column upright (the reference's sign convention); a vertebra
without a body (C1's ring) still gets a patch; an empty mask gives no patch.
"""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.geometry import Volume
from spineps_dask.phantom import make_phantom
from spineps_dask.pipeline.patches import (
    PatchSettings,
    normalize_nonzero,
    spine_angles,
    vertebra_ids,
    vertebra_patches,
)

#: (P, I, R) voxels of 3 mm, P along -y, I along -z, R along +x.
PIR_AFFINE = np.array([[0, 0, 3.0, 0], [-3.0, 0, 0, 0], [0, -3.0, 0, 0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(7, region="cervical", c1_in_view=True, orientation=("R", "A", "S"))


def test_one_patch_per_vertebra_top_down(phantom):
    vp = vertebra_patches(phantom.image, phantom.instance, phantom.semantic)
    expected = vertebra_ids(np.asarray(phantom.instance.data))
    assert vp.ids == tuple(expected)  # cervical: C1 first, ascending ids = top down
    assert vp.ids[0] == 1
    assert vp.patches.shape == (len(expected), 32, 64, 32)
    assert vp.patches.dtype == np.float32
    for patch in vp.patches:
        nz = patch[patch != 0]
        assert abs(nz.mean()) < 1e-3 and abs(nz.std() - 1) < 1e-3


def test_sacrum_is_not_a_vertebra():
    assert vertebra_ids(np.array([[[0, 26, 24, 124, 224]]])) == [24]


def test_turning_stands_a_tilted_column_upright():
    """Bodies stepping 6 voxels posterior per 15 down (21.8 degrees): after turning, the
    column runs straight down the patch's middle."""
    shape = (80, 120, 20)
    inst = np.zeros(shape, np.uint16)
    img = np.ones(shape, np.float32)
    for k in range(6):
        i, p = 20 + 15 * k, 20 + 6 * k
        inst[p - 3 : p + 4, i - 4 : i + 5, 7:13] = k + 1
        img[p - 3 : p + 4, i - 4 : i + 5, 7:13] = 5.0
    vp = vertebra_patches(Volume(img, PIR_AFFINE), Volume(inst, PIR_AFFINE))
    assert vp.angles == pytest.approx((-np.degrees(np.arctan2(6, 15)),) * 6, abs=0.01)
    flat = vertebra_patches(
        Volume(img, PIR_AFFINE), Volume(inst, PIR_AFFINE), settings=PatchSettings(rotate=False)
    )
    assert flat.angles == (0.0,) * 6
    assert _drift(vp.patches[2]) <= 3.0 < 10.0 < _drift(flat.patches[2])


def _drift(patch):
    """How far (voxels along P) the bright column wanders over the patch's height."""
    mid = patch[:, :, 16]
    bright = mid > mid.mean() + 0.5 * mid.std()
    return np.ptp([np.flatnonzero(bright[:, i]).mean() for i in range(64) if bright[:, i].any()])


def test_angle_sign_follows_the_reference():
    """Reference: angle between the axis (I, P, L) and straight down, signed by L - P."""
    coms = np.array([[0.0, 0.0, 0.0], [3.0, 10.0, 0.0], [6.0, 20.0, 0.0]])  # (P, I, R)
    got = spine_angles(coms, ("P", "I", "R"), (1.0, 1.0, 1.0))
    v = np.array([20.0, 6.0, 0.0])  # (I, P, L) from the first to the last
    theta = np.degrees(np.arccos(v[0] / np.linalg.norm(v)))
    assert got[1] == pytest.approx(-theta)  # L - P < 0
    assert spine_angles(coms[:1], ("P", "I", "R"), (1.0, 1.0, 1.0)).tolist() == [0.0]


def test_empty_mask_gives_no_patch(phantom):
    empty = phantom.instance.with_data(np.zeros(phantom.instance.shape, np.uint16))
    vp = vertebra_patches(phantom.image, empty)
    assert vp.ids == () and vp.patches.shape == (0, 32, 64, 32)


def test_normalize_keeps_padding_zero():
    out = normalize_nonzero(np.array([0.0, 2.0, 2.0, 0.0]))
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0]
