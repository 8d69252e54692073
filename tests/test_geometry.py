"""Voxel geometry: the reference's grids (TPTBox ``rescale`` / ``resample_from_to``) reproduced.

Published SPINEPS weights were validated on inputs resampled by TPTBox; `rescale` and
`resample_to` must give the very same grid and voxels (issue 22). These tests run TPTBox itself
(a test extra) beside ours on scans stored as NIfTI files store them (float32 affines).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spineps_dask.geometry import Volume, reference_zoom, resample_to, rescale

needs_tptbox = pytest.mark.skipif(
    importlib.util.find_spec("TPTBox") is None, reason="tptbox (test extra) not installed"
)

_AXES = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
ORIENTATIONS = [("P", "I", "R"), ("R", "A", "S"), ("L", "P", "S"), ("S", "R", "A"), ("I", "L", "P")]


def _affine(codes: tuple[str, str, str], spacing: tuple[float, ...], origin) -> np.ndarray:
    """An axis-aligned affine as a NIfTI file holds it (float32 values)."""
    a = np.eye(4)
    a[:3, :3] = 0.0
    for i, code in enumerate(codes):
        axis, sign = _AXES[code]
        a[axis, i] = sign * spacing[i]
    a[:3, 3] = origin
    return a.astype(np.float32).astype(np.float64)


def _cases(n: int = 24):
    rng = np.random.default_rng(7)
    for k in range(n):
        codes = ORIENTATIONS[k % len(ORIENTATIONS)]
        spacing = tuple(float(v) for v in rng.choice([0.5, 0.6875, 0.8333333, 1.0, 3.3, 4.0], 3))
        target = tuple(float(v) for v in rng.choice([0.75, 1.5, 1.65, 2.0, 3.0], 3))
        shape = tuple(int(v) for v in rng.integers(9, 40, 3))
        yield _affine(codes, spacing, rng.normal(0, 60, 3)), shape, target, rng


@needs_tptbox
@pytest.mark.parametrize("order", [3, 0])
def test_rescale_gives_tptbox_grid_and_voxels(order: int) -> None:
    """Same shape, affine and voxels as TPTBox ``NII.rescale`` (spline for images, nearest for
    masks), across orientations, spacings and dtypes."""
    from TPTBox import NII

    for affine, shape, target, rng in _cases():
        if order == 3:
            data = rng.normal(500, 200, shape).astype(rng.choice([np.float32, np.int16]))
        else:
            data = rng.integers(0, 6, shape).astype(np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = NII(nib.Nifti1Image(data, affine), seg=order == 0).rescale(target)
        ours = rescale(Volume(data, affine), target, order=order)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-9)
        assert ours.data.dtype == data.dtype
        np.testing.assert_array_equal(ours.data, theirs.get_array())


@needs_tptbox
@pytest.mark.parametrize("order", [3, 0])
def test_resample_to_gives_tptbox_voxels_back_on_the_scan(order: int) -> None:
    """A model-resolution array mapped back onto the scan grid as ``resample_from_to`` maps it:
    identical, including nearest-neighbour ties at exact halves (1.5 mm onto 0.75 mm)."""
    from TPTBox import NII

    for affine, shape, target, rng in _cases():
        data = (
            rng.normal(500, 200, shape).astype(np.float32)
            if order == 3
            else rng.integers(0, 6, shape).astype(np.uint8)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scan = NII(nib.Nifti1Image(data, affine), seg=order == 0)
            small = scan.rescale(target)
            theirs = small.resample_from_to(scan, verbose=False)
        ours = resample_to(Volume(small.get_array(), small.affine), shape, affine, order=order)
        assert ours.shape == shape
        np.testing.assert_array_equal(ours.affine, affine)
        np.testing.assert_allclose(ours.data, theirs.get_array(), rtol=1e-6, atol=1e-3)


def test_rescale_returns_the_volume_when_already_at_spacing() -> None:
    """Within 1e-3 mm of the target spacing nothing is resampled (TPTBox's tolerance)."""
    vol = Volume(np.zeros((4, 5, 6), np.uint8), np.diag([1.5, 1.5004, 3.0, 1.0]))
    assert rescale(vol, (1.5, 1.5, 3.0), order=0) is vol


def test_rescale_anchors_the_first_voxel_centre() -> None:
    """The new grid starts at the old first voxel's centre; shape is rint(shape * zoom / new)."""
    affine = np.diag([0.8, 0.8, 3.3, 1.0])
    affine[:3, 3] = (10.0, -5.0, 2.0)
    out = rescale(Volume(np.ones((21, 10, 7), np.float32), affine), (1.5, 1.5, 3.0), order=3)
    assert out.shape == (11, 5, 8)
    np.testing.assert_allclose(out.affine[:3, 3], (10.0, -5.0, 2.0))
    np.testing.assert_allclose(reference_zoom(out.affine), (1.5, 1.5, 3.0))


def test_resample_to_same_zoom_is_an_exact_shift() -> None:
    """A grid that differs by whole voxels (a padded copy, another orientation) is reached by
    reorientation and cropping: every voxel kept, no interpolation."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 9, (6, 7, 8)).astype(np.uint8)
    affine = np.diag([-1.5, 1.5, 3.0, 1.0])
    padded = np.pad(data, 2)
    shift = np.eye(4)
    shift[:3, 3] = -2
    big = Volume(padded, affine @ shift).reorient(("S", "A", "R"))
    back = resample_to(big, data.shape, affine, order=0)
    np.testing.assert_array_equal(back.data, data)


@needs_tptbox
def test_rescale_matches_tptbox_on_the_real_sample(tmp_path: Path) -> None:
    """The real T2w crop the tptbox wheel ships, read from its file as `spineps` reads it, onto
    the demo semantic model's grid: identical voxels."""
    import TPTBox
    from TPTBox import NII

    from spineps_dask.io.nifti import load_volume

    path = Path(TPTBox.__file__).parent / "tests" / "sample_mri" / "sub-mri_label-6_T2w.nii.gz"
    ours = rescale(load_volume(path).reorient(("R", "I", "P")), (3.0, 1.5, 1.5), order=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = NII.load(path, seg=False).reorient(("R", "I", "P")).rescale((3.0, 1.5, 1.5))
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.data, theirs.get_array())
