"""Dice / IoU on arrays: known answers and the empty-mask convention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spineps_dask.metrics.overlap import dice, dice_per_label, iou


def _cube(shape, start, size):
    m = np.zeros(shape, bool)
    m[tuple(slice(s, s + size) for s in start)] = True
    return m


def test_identical_masks_have_dice_and_iou_one():
    m = _cube((10, 10, 10), (2, 2, 2), 5)
    assert dice(m, m) == 1.0
    assert iou(m, m) == 1.0


@pytest.mark.parametrize(("n", "k"), [(6, 1), (6, 3), (8, 2)])
def test_shifted_cube_dice_is_overlap_fraction(n, k):
    """A cube shifted by k voxels overlaps on (n - k) of n slices: Dice = (n-k)/n."""
    a = _cube((20, 20, 20), (3, 3, 3), n)
    b = _cube((20, 20, 20), (3 + k, 3, 3), n)
    assert dice(a, b) == pytest.approx((n - k) / n, abs=1e-12)
    assert iou(a, b) == pytest.approx((n - k) / (n + k), abs=1e-12)


def test_empty_masks_follow_nnunet_panoptica_convention():
    """Both empty -> NaN (not counted as perfect); one empty -> 0."""
    empty = np.zeros((4, 4, 4), bool)
    full = _cube((4, 4, 4), (1, 1, 1), 2)
    assert math.isnan(dice(empty, empty))
    assert dice(full, empty) == 0.0
    assert dice(empty, full) == 0.0


def test_dice_per_label_equals_binary_dice_of_each_label():
    """The one-pass bincount gives the same Dice as masking each label separately."""
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, (12, 13, 14)).astype(np.uint8)
    ref = rng.integers(0, 5, (12, 13, 14)).astype(np.uint8)
    pred[pred == 4] = 0  # label 4 only in the reference
    got = dice_per_label(pred, ref, labels=[1, 2, 3, 4, 9])
    for lab in (1, 2, 3):
        assert got[lab] == pytest.approx(dice(pred == lab, ref == lab), abs=1e-12)
    assert got[4] == 0.0
    assert math.isnan(got[9])


def test_shape_mismatch_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="resample the prediction"):
        dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
