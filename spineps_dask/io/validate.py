"""Checks that a loaded scan is a finite 3D image with a sane geometry, before it is stored.

``load_volume`` already refuses unreadable, truncated, non-NIfTI and non-3D files; this module
catches what reads fine but would make the pipeline fail late or silently: NaN/Inf voxels,
non-numeric voxels, degenerate axes, content in a single slice (N4 fails on it deep inside
ITK), a zero, negative (singular affine) or absurd spacing, and an origin kilometres away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume, voxel_spacing


@dataclass(frozen=True)
class ScanLimits:
    """What counts as a plausible MRI scan.

    Spacing bounds: clinical spine MRI lies between ~0.2 mm (in-plane) and ~8 mm (slice
    thickness); 0.01-50 mm only refuses values that are surely a header error (e.g. m vs mm).
    ``max_bytes``: the voxels of one scan as stored (shape x dtype size), checked from the
    header before reading; a whole-spine T2w scan takes 10-100 MB, and the pipeline needs
    several float copies of it, so 1 GiB keeps a worker of a few GiB safe.
    ``max_origin_mm``: how far from the scanner's centre the affine may place the first voxel
    (a scanner bore is under a metre; 100 m is a header error such as a wrong unit).
    """

    min_voxels_per_axis: int = 2
    min_spacing_mm: float = 0.01
    max_spacing_mm: float = 50.0
    max_bytes: int = 1 << 30
    max_origin_mm: float = 1e5


def validate_scan(vol: Volume, *, name: str = "scan", limits: ScanLimits | None = None) -> Volume:
    """Return ``vol`` unchanged if it is a usable 3D image, else raise.

    Raises
    ------
    InputError
        With the offending value and what to fix.
    """
    limits = limits or ScanLimits()
    _check_voxels(vol.data, name=name, limits=limits)
    _check_affine(vol.affine, name=name, limits=limits)
    return vol


def _check_voxels(data: np.ndarray, *, name: str, limits: ScanLimits) -> None:
    if data.dtype.fields is not None or not (
        np.issubdtype(data.dtype, np.integer)
        or np.issubdtype(data.dtype, np.floating)
        or data.dtype == np.bool_
    ):
        raise InputError(
            f"{name}: voxel type {data.dtype} is not a grey-value image (RGB or complex?); "
            "convert it to a single-channel integer or float NIfTI"
        )
    small = [s for s in data.shape if s < limits.min_voxels_per_axis]
    if small:
        raise InputError(
            f"{name}: shape {data.shape} is not a 3D volume (axis of {small[0]} voxel); "
            "a stack of slices is needed"
        )
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(
                f"{name}: {bad} of {data.size} voxels are NaN or Inf; fix or re-export the scan"
            )
    nonzero = data != 0
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        filled = int(np.count_nonzero(nonzero.any(axis=other)))
        if filled == 1:
            raise InputError(
                f"{name}: all non-zero voxels lie in one slice along array axis {axis} (of "
                f"{data.shape[axis]}); the scan is blank elsewhere, re-export it"
            )


def _check_affine(affine: np.ndarray, *, name: str, limits: ScanLimits) -> None:
    affine = np.asarray(affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise InputError(f"{name}: the affine has NaN/Inf entries: {affine.tolist()}")
    origin = affine[:3, 3]
    if np.any(np.abs(origin) > limits.max_origin_mm):
        raise InputError(
            f"{name}: the affine places the first voxel at {np.round(origin, 1).tolist()} mm, "
            f"over {limits.max_origin_mm:g} mm from the scanner's centre; check the header's "
            "qoffset/srow values (and their unit)"
        )
    spacing = voxel_spacing(affine)
    if np.any(spacing < limits.min_spacing_mm) or np.any(spacing > limits.max_spacing_mm):
        raise InputError(
            f"{name}: voxel spacing {np.round(spacing, 4).tolist()} mm is outside "
            f"[{limits.min_spacing_mm}, {limits.max_spacing_mm}] mm; check the header's pixdim "
            "and qform/sform"
        )
    # A singular 3x3 part (collinear axes) has no inverse: no way back to native space.
    det = abs(float(np.linalg.det(affine[:3, :3])))
    if det < 1e-6 * float(np.prod(spacing)):
        raise InputError(f"{name}: the affine's axes are collinear (det {det:.3g}); fix the header")
