"""Input check: which scans are refused, and what the message says."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume
from spineps_dask.pipeline.check import check_scan


def _scan(shape=(12, 40, 40), spacing=(3.5, 0.6, 0.6), *, perm=(0, 1, 2)) -> Volume:
    """Random scan; ``perm`` maps array axes onto the RAS axes x, y, z."""
    aff = np.zeros((4, 4))
    for axis, (ras, sp) in enumerate(zip(perm, spacing, strict=True)):
        aff[ras, axis] = sp
    aff[3, 3] = 1
    return Volume(np.random.default_rng(0).random(shape).astype(np.float32), aff)


def test_sagittal_thick_slices_accepted_whatever_the_array_axis():
    """The thick axis may be any array axis as long as it points left-right."""
    check_scan(_scan())
    check_scan(_scan((40, 40, 12), (0.6, 0.6, 3.5), perm=(1, 2, 0)))


def test_isotropic_accepted():
    check_scan(_scan((30, 30, 30), (1.0, 1.0, 1.2)))


@pytest.mark.parametrize(
    ("perm", "plane", "code"), [((2, 0, 1), "axial", "[SI]"), ((1, 0, 2), "coronal", "[AP]")]
)
def test_axial_and_coronal_thick_slices_rejected(perm, plane, code):
    """Thick axis along S-I is axial, along A-P coronal; message names plane, size and fix."""
    with pytest.raises(
        InputError,
        match=rf"{plane} thick-slice scan: voxel size 3.5x0.6x0.6 mm.*points {code}.*sagittal",
    ):
        check_scan(_scan(perm=perm))


def test_2d_rejected():
    with pytest.raises(
        InputError, match=r"2D or too thin: shape \(1, 40, 40\), axis 0 has 1 voxel"
    ):
        check_scan(_scan((1, 40, 40)))


def test_nan_and_inf_rejected_with_count():
    vol = _scan()
    vol.data[0, 0, :3] = [np.nan, np.inf, -np.inf]
    with pytest.raises(InputError, match=r"3 NaN/Inf voxel"):
        check_scan(vol, subject="sub-1")


def test_empty_and_constant_rejected():
    with pytest.raises(InputError, match="empty: every voxel is 0"):
        check_scan(Volume(np.zeros((12, 40, 40)), _scan().affine))
    with pytest.raises(InputError, match="constant: every voxel is 7"):
        check_scan(Volume(np.full((12, 40, 40), 7.0), _scan().affine))


def test_error_carries_subject_and_step():
    with pytest.raises(InputError) as info:
        check_scan(Volume(np.zeros((12, 40, 40)), _scan().affine), subject="sub-9")
    assert info.value.subject == "sub-9" and info.value.step == "check"
    assert str(info.value).startswith("[sub-9, check]")
