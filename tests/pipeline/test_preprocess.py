"""Preprocessing: both recipes, crop/pad with an exact undo, N4 on a shrunk grid.

The reference recipe is checked against TPTBox itself (the reference's image library, a test
extra), step for step as `spineps` 2.1.3 ``phase_pre.preprocess_input`` runs it (issue 22).
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spineps_dask.geometry import Volume
from spineps_dask.pipeline.preprocess import (
    PreprocessSettings,
    crop_pad,
    n4_correct,
    normalize_intensity,
    normalize_like_reference,
    preprocess,
    undo_crop_pad,
)

NATIVE = PreprocessSettings(recipe="native")
needs_tptbox = pytest.mark.skipif(
    importlib.util.find_spec("TPTBox") is None, reason="tptbox (test extra) not installed"
)


def _scan() -> Volume:
    data = np.zeros((20, 30, 25), np.int16)
    data[3:15, 5:28, 2:20] = np.random.default_rng(0).integers(1, 900, size=(12, 23, 18))
    aff = np.array([[0, 0, -3.0, 10], [-0.6, 0, 0, 20], [0, -0.6, 0, 30], [0, 0, 0, 1]])
    return Volume(data, aff)


def test_preprocess_crops_pads_normalises_and_keeps_world_position():
    """Native: non-zero box padded by 4, in 0..1500; voxel (4,4,4) maps to input (3,5,2)."""
    vol = _scan()
    out, _ = preprocess(vol, settings=NATIVE)
    assert out.shape == (12 + 8, 23 + 8, 18 + 8)
    assert out.data.dtype == np.float32
    assert out.data.min() == 0 and out.data.max() == pytest.approx(1500)
    assert (out.data[:4] == 0).all() and (out.data[-4:] == 0).all()
    assert np.allclose(out.affine @ [4, 4, 4, 1], vol.affine @ [3, 5, 2, 1])
    assert out.orientation == vol.orientation


def test_undo_crop_pad_round_trip_is_exact():
    """Labels on the preprocessed grid go back to the input's exact shape, affine and voxels."""
    vol = _scan()
    out, rec = preprocess(vol, settings=NATIVE)
    labels = (out.data > 0).astype(np.uint8) * 49
    back = undo_crop_pad(Volume(labels, out.affine), rec)
    assert back.shape == vol.shape
    assert np.array_equal(back.affine, vol.affine)
    assert back.data.dtype == np.uint8
    expected = np.where(vol.data > vol.data[vol.data > 0].min(), 49, 0)  # min maps to 0
    assert np.array_equal(back.data, expected)
    with pytest.raises(ValueError, match="preprocessed shape"):
        undo_crop_pad(labels[1:], rec)


def test_normalize_constant_is_zero():
    assert not normalize_intensity(np.full((2, 2, 2), 5.0)).any()


def test_n4_removes_a_smooth_bias_in_seconds():
    """A smooth multiplicative bias (+-30 %) is mostly removed, on a 24x96x96 scan in < 10 s."""
    rng = np.random.default_rng(1)
    truth = np.zeros((24, 96, 96), np.float32)
    truth[2:22, 8:88, 8:88] = 500 + 20 * rng.standard_normal((20, 80, 80))
    y = np.linspace(-1, 1, 96)[None, :, None]
    x = np.linspace(-1, 1, 96)[None, None, :]
    biased = truth * (1 + 0.3 * y + 0.2 * x * x).astype(np.float32)
    t0 = time.perf_counter()
    corrected = n4_correct(biased, (3.0, 0.8, 0.8))
    elapsed = time.perf_counter() - t0
    inside = truth > 0

    def residual_bias(a: np.ndarray) -> float:
        ratio = a[inside] / truth[inside]
        return float(ratio.std() / ratio.mean())

    assert residual_bias(biased) > 0.1
    assert residual_bias(corrected) < 0.3 * residual_bias(biased)
    assert elapsed < 10


def test_preprocess_with_n4_keeps_range_and_shape():
    out, _ = preprocess(_scan(), settings=PreprocessSettings(n4=True, recipe="native"))
    assert out.shape == (20, 31, 26)
    assert out.data.min() >= 0 and out.data.max() == pytest.approx(1500)


def test_crop_pad_is_the_inverse_of_undo_crop_pad():
    """A mask given on the input grid lands exactly on the preprocessed grid and back."""
    rng = np.random.default_rng(3)
    data = np.zeros((20, 30, 12), np.float32)
    data[3:17, 5:26, 2:10] = rng.random((14, 21, 8)) + 1
    aff = np.diag([0.7, 0.7, 3.3, 1.0])
    aff[:3, 3] = (4.0, -2.0, 9.0)
    vol = Volume(data, aff)
    for recipe in ("native", "reference"):
        prepared, record = preprocess(vol, settings=PreprocessSettings(recipe=recipe))
        mask = Volume((data > 1.5).astype(np.uint8), aff)
        on_prepared = crop_pad(mask, record)
        assert on_prepared.shape == prepared.shape
        np.testing.assert_allclose(on_prepared.affine, prepared.affine)
        back = undo_crop_pad(on_prepared, record)
        np.testing.assert_array_equal(back.data, mask.data)


@settings(max_examples=30, deadline=None)
@given(
    data=arrays(np.int16, st.tuples(*[st.integers(1, 9)] * 3), elements=st.integers(-5, 5)),
    pad=st.integers(0, 5),
)
def test_undo_crop_pad_is_exact_for_any_volume(data, pad):
    """Property: whatever the non-zero box, undo(preprocess) restores shape, affine, labels."""
    aff = np.diag([0.6, 0.6, 3.0, 1.0])
    aff[:3, 3] = (1, 2, 3)
    vol = Volume(data, aff)
    out, rec = preprocess(vol, settings=PreprocessSettings(pad=pad, recipe="native"))
    box = tuple(slice(a, b) for a, b in zip(rec.lo, rec.hi, strict=True))
    labels = np.zeros(out.shape, np.uint8)
    labels[tuple(slice(pad, n - pad) for n in out.shape)] = (data[box] != 0) + 1
    back = undo_crop_pad(labels, rec)
    assert back.shape == vol.shape and np.array_equal(back.affine, vol.affine)
    expected = np.zeros(vol.shape, np.uint8)
    expected[box] = (data[box] != 0) + 1
    assert np.array_equal(back.data, expected)
    assert np.allclose(out.affine @ [pad, pad, pad, 1], vol.affine @ [*rec.lo, 1])


@needs_tptbox
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32, np.float64])
def test_normalize_like_reference_is_tptbox_normalize_to_range(dtype):
    """Shift to 0, scale down to 1500 only when above, in the scan's dtype (ints truncated)."""
    from TPTBox import NII

    rng = np.random.default_rng(2)
    for top in (300, 3000, 60000):
        low = 0 if np.dtype(dtype).kind == "u" else -50
        data = (rng.random((9, 11, 7)) * top + low).astype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nii = NII(nib.Nifti1Image(data, np.diag([0.7, 0.7, 3.3, 1.0])))
            nii.normalize_to_range_(0, 1500, verbose=False)
        ours = normalize_like_reference(data)
        assert ours.dtype == nii.dtype
        np.testing.assert_array_equal(ours, nii.get_array())


@needs_tptbox
@pytest.mark.parametrize("speck", [False, True])
def test_reference_preprocess_is_spineps_preprocess_input(speck):
    """The reference recipe equals `spineps` ``preprocess_input`` done with TPTBox: normalise,
    crop to the non-zero box, normalise the box again, put it back, pad 4 around the whole
    image (no crop of the grid); same dtype, voxels and affine. (N4 differs by design: ANTs
    there, SimpleITK on a shrunk grid here.)"""
    from TPTBox import NII

    rng = np.random.default_rng(4)
    data = np.zeros((18, 40, 30), np.int16)
    data[2:15, 5:36, 3:27] = rng.integers(40, 2600, (13, 31, 24))
    if speck:  # a negative voxel: the minimum is not the background, nothing is cropped
        data[6, 9, 8] = -30
    affine = np.array([[0, 0, -3.3, 10], [-0.69, 0, 0, 20], [0, -0.69, 0, 30], [0, 0, 0, 1]])
    vol = Volume(data, affine.astype(np.float32).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nii = NII(nib.Nifti1Image(data, vol.affine))
        nii.normalize_to_range_(0, 1500, verbose=False)
        crop = nii.compute_crop(dist=0)
        box = nii.apply_crop(crop)
        box.normalize_to_range_(0, 1500, verbose=False)
        nii[crop] = box
        theirs = nii.pad_to(tuple(s + 8 for s in nii.shape))
    ours, record = preprocess(vol)
    assert record.recipe == "reference" and record.lo == (0, 0, 0) and record.hi == vol.shape
    assert ours.data.dtype == theirs.get_array().dtype
    np.testing.assert_array_equal(ours.data, theirs.get_array())
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-6)
