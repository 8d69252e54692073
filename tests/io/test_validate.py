"""Scan validation: each kind of unusable image is refused with a message naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume
from spineps_dask.io import validate_scan

EYE = np.diag([0.7, 0.7, 3.0, 1.0])


def _nan() -> np.ndarray:
    data = np.ones((8, 8, 4), np.float32)
    data[2, 3, 1] = np.nan
    return data


def _inf() -> np.ndarray:
    data = np.ones((8, 8, 4), np.float64)
    data[0, 0, 0] = -np.inf
    return data


def _one_slice() -> np.ndarray:
    data = np.zeros((8, 8, 4), np.int16)
    data[:, :, 2] = 300  # blank but for one slice: N4 would fail deep inside ITK on it
    return data


FAR = np.diag([0.7, 0.7, 3.0, 1.0])
FAR[:3, 3] = [0.0, 2e6, 0.0]  # 2 km: metres written as micrometres, say

BAD = {
    "content in one slice": (_one_slice(), EYE, "all non-zero voxels lie in one slice along"),
    "origin kilometres away": (FAR, None, r"places the first voxel at \[0.0, 2000000.0, 0.0\]"),
    "nan": (_nan(), EYE, "1 of 256 voxels are NaN or Inf"),
    "inf": (_inf(), EYE, "NaN or Inf"),
    "complex": (np.ones((8, 8, 4), np.complex64), EYE, "not a grey-value image"),
    "single slice": (np.ones((8, 8, 1), np.int16), EYE, r"axis of 1 voxel"),
    "zero spacing": (
        np.ones((8, 8, 4)),
        np.diag([0.7, 0.0, 3.0, 1.0]),
        r"spacing \[0.7, 0.0, 3.0\]",
    ),
    "huge spacing": (np.ones((8, 8, 4)), np.diag([0.7, 0.7, 3000.0, 1.0]), "outside"),
    "nan affine": (np.ones((8, 8, 4)), np.diag([np.nan, 1, 1, 1.0]), "NaN/Inf entries"),
    "collinear axes": (
        np.ones((8, 8, 4)),
        np.array([[1.0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]]),
        "collinear",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_unusable_scans_are_refused_with_a_clear_reason(case):
    data, affine, message = BAD[case]
    if affine is None:
        data, affine = np.ones((8, 8, 4)), data
    with pytest.raises(InputError, match=message):
        validate_scan(Volume(data, affine), name="x.nii.gz")


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32, np.bool_])
def test_plain_3d_scans_pass_unchanged(dtype):
    vol = Volume(np.ones((8, 8, 4), dtype), np.diag([-0.5, 0.5, 4.0, 1.0]))  # flips are fine
    assert validate_scan(vol) is vol
