"""Refuse scans the method cannot segment, with a message that names the problem and the value.

SPINEPS is trained on sagittal T2w scans: thick-slice sagittal (e.g. 0.6 x 0.6 x 3-4 mm, the
thick axis left-right) and isotropic ones (reference doc, "Input check"). An axial or coronal
stack, a single slice or an empty / broken image gives garbage or a crash deep in the pipeline,
so it is stopped here, before any model runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume

_PLANE = {
    "L": "sagittal",
    "R": "sagittal",
    "A": "coronal",
    "P": "coronal",
    "S": "axial",
    "I": "axial",
}


@dataclass(frozen=True)
class CheckSettings:
    """``isotropic_ratio``: largest / smallest voxel size up to which a scan counts as isotropic.

    ``min_extent``: fewest voxels an axis may have (a 2D slice or a thin slab cannot be cut into
    the model's patches).
    """

    isotropic_ratio: float = 1.5
    min_extent: int = 8


def check_scan(
    vol: Volume, *, settings: CheckSettings | None = None, subject: str | None = None
) -> None:
    """Raise `InputError` unless ``vol`` is a sagittal (or isotropic) 3D scan with real contrast.

    Parameters
    ----------
    vol : Volume
        The scan as read, shape (X, Y, Z) in its own voxel axes.
    settings : CheckSettings, optional
    subject : put into the error so a batch manifest row says which scan failed

    Raises
    ------
    InputError
        2D / too thin, NaN or Inf voxels, empty or constant image, axial or coronal thick slices.

    Examples
    --------
    >>> aff = np.diag([3.5, 0.6, 0.6, 1.0])  # thick axis along x = left-right: sagittal
    >>> check_scan(Volume(np.random.default_rng(0).random((12, 40, 40)), aff))
    """
    s = settings or CheckSettings()

    def fail(msg: str) -> InputError:
        return InputError(msg, subject=subject, step="check")

    shape = vol.shape
    if min(shape) < s.min_extent:
        axis = int(np.argmin(shape))
        raise fail(
            f"scan is 2D or too thin: shape {shape}, axis {axis} has {shape[axis]} voxel(s) "
            f"(need >= {s.min_extent}); give the full 3D stack, not a single slice"
        )
    data = vol.data
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise fail(f"scan has {bad} NaN/Inf voxel(s) of {data.size}; fix or mask them first")
    lo, hi = float(data.min()), float(data.max())
    if hi == 0 and lo == 0:
        raise fail("scan is empty: every voxel is 0")
    if hi == lo:
        raise fail(f"scan is constant: every voxel is {lo:g}; no contrast to segment")
    _check_orientation(vol, s, fail)


def _check_orientation(vol: Volume, s: CheckSettings, fail) -> None:
    spacing = np.asarray(vol.spacing)
    if not np.all(spacing > 0):
        raise fail(f"voxel spacing {tuple(spacing)} must be positive; the affine is degenerate")
    ratio = float(spacing.max() / spacing.min())
    if ratio <= s.isotropic_ratio:
        return
    thick = int(np.argmax(spacing))
    code = nib.aff2axcodes(vol.affine)[thick]
    plane = _PLANE[code]
    if plane != "sagittal":
        spacing_mm = "x".join(f"{v:g}" for v in spacing)
        raise fail(
            f"{plane} thick-slice scan: voxel size {spacing_mm} mm, the thick axis {thick} "
            f"({spacing[thick]:g} mm) points {code}; SPINEPS needs sagittal slices (thick axis "
            f"left-right) or an isotropic scan (max/min voxel size <= {s.isotropic_ratio:g})"
        )
