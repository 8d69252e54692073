"""Voxel geometry: a 3D array with its affine, exact reorientation and resampling.

Every array in the pipeline travels with its affine (voxel index -> RAS+ millimetres, the NIfTI
convention), so any step can be undone and outputs land in the input's native space.

Two resampling conventions live here. `rescale` and `resample_to` reproduce the grids of TPTBox
``NII.rescale`` / ``NII.resample_from_to``, which `spineps` 2.1.3 uses to feed its networks (the
new grid anchored on the first voxel's centre, voxel centres mapped onto voxel centres):
published weights see what they were validated on (issue 22).
`resample` keeps the field of view's outer edges instead; the ``native`` recipe uses it.
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


def reference_zoom(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes as TPTBox reports them (column norms rounded to 7 decimals).

    The rounding matters: the new shape of `rescale` is ``rint(shape * zoom / spacing)``, and a
    zoom of 0.8333333 instead of 0.83333333333 can move that across a half.
    """
    return np.round(voxel_spacing(affine), 7)


def rescale(vol: Volume, spacing: Sequence[float], *, order: int, atol: float = 1e-3) -> Volume:
    """Resample to ``spacing`` on the grid TPTBox ``NII.rescale`` builds (the reference's).

    New shape ``rint(shape * zoom / spacing)``; the first voxel's centre stays where it was;
    each axis keeps its direction. ``order=3`` is a cubic spline (images), ``order=0`` nearest
    neighbour (label maps). Mode ``nearest`` at the borders; the dtype is kept (scipy
    rounds an integer output). Returns ``vol`` itself when the zoom is already within ``atol``.
    """
    zoom = reference_zoom(vol.affine)
    target = np.asarray(spacing, dtype=float)
    if np.allclose(target, zoom, atol=atol, rtol=0):
        return vol
    shape = np.array(vol.shape)
    new_shape = tuple(int(v) for v in np.rint(shape * zoom / target))
    affine = np.array(vol.affine, dtype=float)
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * target / voxel_spacing(affine)
    return _transform(vol, new_shape, new_affine, order=order)


def resample_to(vol: Volume, shape: Sequence[int], affine: np.ndarray, *, order: int) -> Volume:
    """Resample onto another grid as TPTBox ``NII.resample_from_to`` does (the reference's
    way back from model resolution to the scan).

    A grid that differs only by axis order or by whole voxels (same zoom) is reached exactly by
    reorientation and zero padding / cropping; otherwise by `scipy.ndimage.affine_transform`
    (voxel centres onto voxel centres, as in `rescale`).
    """
    shape = tuple(int(v) for v in shape)
    affine = np.asarray(affine, dtype=float)
    if vol.shape == shape and np.allclose(vol.affine, affine, atol=1e-6, rtol=0):
        return Volume(vol.data, affine)
    target_codes = tuple(nib.aff2axcodes(affine))
    if np.allclose(reference_zoom(vol.affine), _permuted_zoom(affine, vol), atol=1e-6, rtol=0):
        moved = _shift_onto(vol.reorient(target_codes), shape, affine)
        if moved is not None:
            return moved
    return Volume(_transform(vol, shape, _grid_affine(affine), order=order).data, affine)


def _grid_affine(affine: np.ndarray) -> np.ndarray:
    """The target affine as TPTBox rebuilds it from its grid: rotation x rounded zoom, rounded to
    7 decimals, origin rounded likewise. It moves a sampling point by ~1e-8 voxel, enough to flip
    a nearest-neighbour tie at an exact half (a 1.5 mm mask onto a 0.75 mm scan)."""
    zoom = reference_zoom(affine)
    out = np.eye(4)
    out[:3, :3] = np.round((affine[:3, :3] / zoom) @ np.diag(zoom), 7)
    out[:3, 3] = np.round(affine[:3, 3], 7)
    return out


def _permuted_zoom(affine: np.ndarray, like: Volume) -> np.ndarray:
    """``affine``'s zoom in ``like``'s axis order (to compare zooms across orientations)."""
    ornt = nio.io_orientation(affine)  # for each axis of affine: which world axis
    like_ornt = nio.io_orientation(like.affine)
    zoom = reference_zoom(affine)
    by_world = {int(w): z for w, z in zip(ornt[:, 0], zoom, strict=True)}
    return np.array([by_world[int(w)] for w in like_ornt[:, 0]])


def _shift_onto(vol: Volume, shape: tuple[int, ...], affine: np.ndarray) -> Volume | None:
    """Pad / crop ``vol`` (same orientation and zoom as the target) by whole voxels."""
    offset = np.linalg.inv(affine) @ np.asarray(vol.affine) @ np.array([0.0, 0.0, 0.0, 1.0])
    shift = np.round(offset[:3]).astype(int)
    out = np.zeros(shape, dtype=vol.data.dtype)
    src, dst = [], []
    for s, n_src, n_dst in zip(shift, vol.shape, shape, strict=True):
        lo, hi = max(0, s), min(n_dst, s + n_src)
        if hi <= lo:
            return Volume(out, affine)
        dst.append(slice(lo, hi))
        src.append(slice(lo - s, hi - s))
    placed = np.array(vol.affine, dtype=float)
    placed[:3, 3] = (np.asarray(vol.affine) @ np.r_[-shift, 1.0])[:3]
    if not np.allclose(placed, affine, atol=1e-4, rtol=0):
        return None  # not a whole-voxel shift: resample instead
    out[tuple(dst)] = np.asarray(vol.data)[tuple(src)]
    return Volume(out, affine)


def _transform(
    vol: Volume,
    shape: Sequence[int],
    affine: np.ndarray,
    *,
    order: int,
) -> Volume:
    """TPTBox's ``_resample_from_to``: scipy ``affine_transform`` between the two voxel grids."""
    # TPTBox can align voxel corners for nearest neighbour, but `rescale` and
    # `resample_from_to` pass ``align_corners=False``: voxel centres map onto voxel centres.
    to_src = np.linalg.inv(np.asarray(vol.affine, dtype=float)) @ np.asarray(affine, dtype=float)
    data = np.asarray(vol.data)
    out = ndimage.affine_transform(
        data,
        to_src[:3, :3],
        to_src[:3, 3],
        output_shape=tuple(int(v) for v in shape),
        order=order,
        mode="nearest",
        cval=0.0 if order == 0 else float(data.min()),
    )
    return Volume(out, np.array(affine, dtype=float))
