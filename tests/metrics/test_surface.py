"""ASSD: hand-computed answers, empty masks, and the bounding box equals the full volume."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from spineps_dask.metrics.surface import assd, assd_per_label


def _cube(shape, start, size):
    m = np.zeros(shape, bool)
    m[tuple(slice(s, s + size) for s in start)] = True
    return m


def _full_volume_assd(pred, ref, spacing):
    """Reference implementation: surfaces and distance maps over the whole array."""
    cross = ndimage.generate_binary_structure(3, 1)
    sp = pred & ~ndimage.binary_erosion(pred, cross)
    sr = ref & ~ndimage.binary_erosion(ref, cross)
    d_pr = ndimage.distance_transform_edt(~sr, sampling=spacing)[sp]
    d_rp = ndimage.distance_transform_edt(~sp, sampling=spacing)[sr]
    return (d_pr.mean() + d_rp.mean()) / 2


def test_identical_masks_have_assd_zero():
    m = _cube((10, 10, 10), (2, 2, 2), 5)
    assert assd(m, m, (1.0, 2.0, 3.0)) == 0.0


@pytest.mark.parametrize(("n", "k", "s", "axis"), [(4, 1, 0.8, 0), (6, 2, 0.5, 1), (5, 1, 0.3, 2)])
def test_shifted_cube_assd_matches_hand_count(n, k, s, axis):
    """Cube of side n shifted by k voxels along `axis` of spacing s (others 1 mm, k*s <= 1).

    Surface voxels of one cube (n^3 - (n-2)^3 of them) and their distance to the other surface:
    the side ring (n^2 - (n-2)^2 voxels per slice) of the first k slices is (k - x)*s away, the
    rest of the ring 0; each of the two caps ((n-2)^2 voxels) is k*s away. Both directions are
    the same by symmetry.
    """
    start = [3, 3, 3]
    a = _cube((16, 16, 16), start, n)
    start[axis] += k
    b = _cube((16, 16, 16), start, n)
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = s
    ring, cap, total = n**2 - (n - 2) ** 2, (n - 2) ** 2, n**3 - (n - 2) ** 3
    expected = s * (ring * k * (k + 1) / 2 + 2 * cap * k) / total
    assert assd(a, b, spacing) == pytest.approx(expected, abs=1e-12)


def test_empty_masks_follow_panoptica_convention():
    """Both empty -> NaN, one empty -> inf."""
    empty = np.zeros((5, 5, 5), bool)
    full = _cube((5, 5, 5), (1, 1, 1), 2)
    assert math.isnan(assd(empty, empty, (1, 1, 1)))
    assert assd(full, empty, (1, 1, 1)) == math.inf
    assert assd(empty, full, (1, 1, 1)) == math.inf


def test_bounding_box_assd_equals_full_volume_on_random_blobs():
    """Crop-based ASSD equals the full-volume computation, also for masks on the array edge."""
    rng = np.random.default_rng(7)
    noise = ndimage.gaussian_filter(rng.standard_normal((40, 36, 30)), 2.0)
    pred, ref = noise > 0.05, np.roll(noise, 2, axis=0) > 0.08
    pred[:, :, :4] = False  # one mask away from an edge, the other touching it
    spacing = (0.7, 1.3, 2.1)
    assert assd(pred, ref, spacing) == pytest.approx(_full_volume_assd(pred, ref, spacing), 1e-9)


def test_assd_per_label_equals_assd_of_each_label():
    """One find_objects pass over the label maps gives each label's ASSD, as masks would."""
    rng = np.random.default_rng(3)
    noise = ndimage.gaussian_filter(rng.standard_normal((30, 30, 30)), 2.0)
    ref = np.digitize(noise, [-0.1, 0.0, 0.1]).astype(np.uint8)
    pred = np.roll(ref, 1, axis=2)
    pred[pred == 2] = 0
    spacing = (1.0, 0.5, 2.0)
    got = assd_per_label(pred, ref, spacing)
    assert sorted(got) == [1, 2, 3]
    for lab in (1, 3):
        want = _full_volume_assd(pred == lab, ref == lab, spacing)
        assert got[lab] == pytest.approx(want, abs=1e-9)
    assert got[2] == math.inf


def test_bad_spacing_is_refused():
    m = _cube((5, 5, 5), (1, 1, 1), 2)
    with pytest.raises(ValueError, match="one positive voxel size"):
        assd(m, m, (1.0, 0.0, 1.0))
