"""`make_phantom`: a seeded synthetic spine scan with its semantic / instance ground truth.

The anatomy is built on a RAS-aligned grid at the target spacing (no downsampling, so a lumbar
phantom takes about a second), then stored in the spec's orientation by an exact axis
permutation (`geometry.reorient`), so label geometry in millimetres does not depend on it.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

from spineps_dask.geometry import Volume, reorient
from spineps_dask.phantom import anatomy
from spineps_dask.phantom.anatomy import Level
from spineps_dask.phantom.image import render_image
from spineps_dask.phantom.posterior import (
    EPIDURAL,
    paint_atlas,
    paint_canal,
    paint_canal_gap,
    paint_posterior,
    paint_sacrum,
)
from spineps_dask.phantom.shapes import Canvas, paint_body, paint_disc
from spineps_dask.phantom.spec import PhantomSpec, replace_spec, sample_spec
from spineps_dask.phantom.truth import level_truth

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phantom:
    """One synthetic subject.

    Attributes
    ----------
    image
        T2w-like float32 scan.
    semantic, instance
        uint8 SPINEPS semantic labels and uint16 instance labels (vertebra X, disc 100+X below
        X, endplates 200+X, sacrum 26), on the image's grid.
    spec
        The recipe; ``make_phantom(phantom.spec)`` rebuilds the same arrays.
    centroids
        Instance label -> centre of mass in voxel coordinates ``(i, j, k)`` of the stored arrays.
    truth
        Vertebra id -> known dimensions (mm, mm², mm³) and generator parameters of that level.
    """

    image: Volume
    semantic: Volume
    instance: Volume
    spec: PhantomSpec
    centroids: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    truth: dict[int, dict[str, object]] = field(default_factory=dict)


def _point_at(levels: list[Level], curve: np.ndarray, s: float) -> np.ndarray:
    """World point of arc length ``s``: the curve above the sacrum, the sacral axis below."""
    sac = levels[-1]
    if s <= sac.s_top:
        return np.array([np.interp(s, curve[:, 0], curve[:, k]) for k in (1, 2, 3)])
    depth = sac.dims["depth"]
    return (
        sac.centre
        + sac.frame @ np.array([0.0, 0.0, -(s - sac.s_top)])
        - sac.frame[:, 1] * (0.3 * depth)
    )


def _grid_axes(levels: list[Level], curve: np.ndarray, spec: PhantomSpec) -> tuple:
    """Voxel-centre coordinates (mm) along x, y, z of the field of view."""
    s_top, _ = anatomy.fov_arc(levels, spec.fov_levels[0])
    s_bot, _ = anatomy.fov_arc(levels, spec.fov_levels[1])
    s_samples = np.linspace(s_top, s_bot, 64)
    pts = np.array([_point_at(levels, curve, s) for s in s_samples])
    lo = np.array([pts[:, 0].mean() - spec.fov_lr_mm / 2, pts[:, 1].min() - spec.fov_ap_mm[1], 0])
    hi = np.array([pts[:, 0].mean() + spec.fov_lr_mm / 2, pts[:, 1].max() + spec.fov_ap_mm[0], 0])
    lo[2], hi[2] = pts[-1, 2], pts[0, 2]
    return tuple(np.arange(lo[k], hi[k] + 1e-6, spec.world_spacing[k]) for k in range(3))


def _paint(canvas: Canvas, levels: list[Level], spec: PhantomSpec) -> None:
    """Paint every structure in priority order: bodies and sacrum, discs, canal and cord (so
    their cross-sections stay exact ellipses), then the posterior elements around them."""
    by_id = {lv.vid: lv for lv in levels}
    for prev, lv in zip([None, *levels[:-1]], levels, strict=True):
        if lv.kind == "sacrum":
            paint_sacrum(canvas, lv)
        elif lv.kind != "C1":
            above = prev.vid if prev is not None and lv.kind != "C2" else None
            paint_body(canvas, lv, above=above, disc_below=True)
    for upper, lower in itertools.pairwise(levels[1:]):  # no disc between C1 and C2
        paint_disc(canvas, upper, lower, upper.dims["disc_signal"])
    conus = anatomy.conus_arc(levels, spec)
    for lv in levels[:-1]:
        paint_canal(canvas, lv, spec.cord_offset, spec.sac_inset, conus)
    for upper, lower in itertools.pairwise(levels):
        gap = anatomy.C1_GAP if upper.kind == "C1" else upper.dims["disc"]
        paint_canal_gap(canvas, upper, lower, gap, spec.cord_offset, spec.sac_inset, conus)
    for i, lv in enumerate(levels[:-1]):
        gap_above = levels[i - 1].dims["disc"] if i > 0 else 0.0
        if lv.kind == "C2":
            gap_above = anatomy.C1_GAP
        if lv.kind == "C1":
            paint_atlas(canvas, lv, by_id[2])
        else:
            paint_posterior(canvas, lv, gap_above=gap_above, gap_below=lv.dims["disc"])
    if any(spec.sac_inset):
        canvas.semantic[canvas.semantic == EPIDURAL] = 0


def _below_c1(canvas: Canvas) -> Canvas:
    """Cut the field of view under the lowest C1 voxel (a tilted atlas can dip into C2's level)."""
    z = np.flatnonzero((canvas.instance == 1).any(axis=(0, 1)))
    if z.size == 0:
        return canvas
    keep = slice(0, int(z.min()))
    return Canvas(
        (*canvas.axes[:2], canvas.axes[2][keep]),
        canvas.semantic[:, :, keep],
        canvas.instance[:, :, keep],
        canvas.disc_signal[:, :, keep],
        canvas.endplate_mm,
        canvas.owner[:, :, keep],
    )


def make_phantom(seed_or_spec: int | PhantomSpec, **overrides: object) -> Phantom:
    """Build one phantom from a seed (or a spec), with optional spec overrides.

    Examples
    --------
    >>> ph = make_phantom(3, region="lumbar", orientation=("P", "I", "R"))
    >>> ph.image.orientation
    ('P', 'I', 'R')
    """
    if isinstance(seed_or_spec, PhantomSpec):
        spec = replace_spec(seed_or_spec, **overrides) if overrides else seed_or_spec
    else:
        # spec fields (typed `object` here), or sample_spec's own float shares
        spec = sample_spec(int(seed_or_spec), **overrides)  # type: ignore[arg-type]
    levels = anatomy.layout(spec)
    curve = anatomy.place(levels, spec)
    axes = _grid_axes(levels, curve, spec)
    endplate = max(1.2, 1.05 * spec.world_spacing[2])
    canvas = Canvas.empty(axes, endplate)
    _paint(canvas, levels, spec)
    if not spec.c1_in_view:
        canvas = _below_c1(canvas)
    image = render_image(canvas.semantic, canvas.disc_signal, canvas.axes, curve, spec)
    affine = np.diag([*spec.world_spacing, 1.0])
    affine[:3, 3] = [float(a[0]) for a in axes]
    affine[:3, 3] += np.asarray(spec.origin_mm)
    vols = [Volume(arr, affine) for arr in (image, canvas.semantic, canvas.instance)]
    image_v, sem_v, inst_v = (reorient(v, spec.orientation) for v in vols)
    centroids = instance_centroids(inst_v.data)
    body_voxels = np.bincount(canvas.owner.ravel(), minlength=64)
    truth = level_truth(
        levels, inst_v.data, body_voxels, float(np.prod(spec.world_spacing)), spec.origin_mm
    )
    logger.debug("phantom seed %s: %s voxels", spec.seed, image_v.shape)
    return Phantom(image_v, sem_v, inst_v, spec, centroids, truth)


def instance_centroids(instance: np.ndarray) -> dict[int, tuple[float, float, float]]:
    """Centre of mass (voxel coordinates) of every instance label present."""
    flat = np.flatnonzero(instance)
    labels = instance.ravel()[flat]
    present, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    coords = np.unravel_index(flat, instance.shape)
    sums = [np.bincount(inverse, weights=c, minlength=len(present)) for c in coords]
    return {
        int(lab): tuple(float(s[k] / counts[k]) for s in sums)  # type: ignore[misc]
        for k, lab in enumerate(present)
    }
