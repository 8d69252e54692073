"""Voxel geometry: a 3D array with its affine, exact reorientation and resampling.

Every array in the pipeline travels with its affine (voxel index -> RAS+ millimetres, the NIfTI
convention), so any step can be undone and outputs land in the input's native space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel import orientations as nio
from scipy import ndimage

from spineps_dask.errors import InputError

Axcodes = tuple[str, str, str]


@dataclass(frozen=True)
class Volume:
    """A 3D array and its 4x4 affine (voxel -> RAS+ mm).

    ``data`` has shape ``(X, Y, Z)`` in the voxel axes the affine describes; its dtype is kept.
    """

    data: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise InputError(f"expected a 3D volume, got shape {self.data.shape}")
        if np.asarray(self.affine).shape != (4, 4):
            raise InputError(f"expected a 4x4 affine, got shape {np.asarray(self.affine).shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return tuple(float(s) for s in voxel_spacing(self.affine))  # type: ignore[return-value]

    @property
    def orientation(self) -> Axcodes:
        """Where each array axis points, e.g. ``('P', 'I', 'R')``."""
        return tuple(nib.aff2axcodes(self.affine))  # type: ignore[return-value]

    def with_data(self, data: np.ndarray) -> Volume:
        """Same geometry, new voxels (shape must match)."""
        if data.shape != self.data.shape:
            raise ValueError(f"shape {data.shape} does not match {self.data.shape}")
        return Volume(data, self.affine)

    def reorient(self, axcodes: Sequence[str]) -> Volume:
        """Exact axis permutation / flip so the array axes point along ``axcodes``."""
        return reorient(self, axcodes)


def voxel_spacing(affine: np.ndarray) -> np.ndarray:
    """Column norms of the affine's 3x3 part: mm per voxel along each axis."""
    return np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))


def reorient(vol: Volume, axcodes: Sequence[str]) -> Volume:
    """Permute and flip axes (no interpolation) so the data lies in ``axcodes`` orientation."""
    current = nio.io_orientation(vol.affine)
    target = nio.axcodes2ornt(tuple(axcodes))
    transform = nio.ornt_transform(current, target)
    data = nio.apply_orientation(vol.data, transform)
    affine = vol.affine @ nio.inv_ornt_aff(transform, vol.data.shape)
    return Volume(np.ascontiguousarray(data), affine)


def resample(
    vol: Volume,
    spacing: Sequence[float] | None = None,
    *,
    shape: Sequence[int] | None = None,
    order: int = 1,
) -> Volume:
    """Resample to a new voxel size (or shape), keeping the field of view's corners.

    ``order=0`` (nearest) is for label maps, 1 or 3 for images. Give ``shape`` to land exactly on
    a known grid, e.g. when undoing an earlier resampling.
    """
    old_shape = np.array(vol.shape, dtype=float)
    old_spacing = np.array(vol.spacing)
    if shape is None:
        if spacing is None:
            raise ValueError("give spacing or shape")
        new_shape = np.maximum(1, np.round(old_shape * old_spacing / np.asarray(spacing)))
    else:
        new_shape = np.asarray(shape, dtype=float)
    new_shape_i = tuple(int(s) for s in new_shape)
    if new_shape_i == vol.shape:
        return vol
    # Voxel edges stay where they were: new voxel i covers old [i*s, (i+1)*s).
    scale = old_shape / new_shape
    offset = 0.5 * scale - 0.5
    data = ndimage.affine_transform(
        vol.data,
        scale,
        offset=offset,
        output_shape=new_shape_i,
        order=order,
        mode="nearest",
        prefilter=order > 1,
    )
    affine = vol.affine.copy()
    affine[:3, :3] = vol.affine[:3, :3] * scale[None, :]
    affine[:3, 3] = vol.affine[:3, :3] @ offset + vol.affine[:3, 3]
    return Volume(data.astype(vol.data.dtype, copy=False), affine)
