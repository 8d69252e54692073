"""Known per-level dimensions of a phantom: what biomarker code is checked against.

Heights come from the generator's geometry (exact, in mm), volumes from the painted voxels (what
a perfect segmentation of this grid would measure). Where each height is taken:

- body heights: along the vertebra's axis at the anterior wall (``a = +depth/2``), the centre,
  and the flat posterior wall (``a = -0.425 depth``), in the mid-sagittal plane;
- disc heights: along the axis halfway between the two vertebrae, at ``a = +0.4 depth``, 0 and
  ``-0.4 depth`` (mean depth of the two bodies), between the facing body surfaces;
- canal / cord areas: the elliptic cross-sections perpendicular to the vertebra's axis.
"""

from __future__ import annotations

import itertools

import numpy as np

from spineps_dask.labels import ENDPLATE_OFFSET, IVD_OFFSET, VERTEBRA_NAMES
from spineps_dask.phantom.anatomy import BACK_WALL, Level
from spineps_dask.phantom.shapes import body_height_at, mid_frame


def _surface(lv: Level, *, top: bool) -> tuple[np.ndarray, float]:
    """World plane ``n . x = rhs`` of a body's top or bottom surface (``u = +-h(a)/2``)."""
    d = lv.dims
    k = (lv.height_anterior - lv.height_posterior) / ((0.5 + BACK_WALL) * d["depth"])
    sign = 1.0 if top else -1.0
    normal = lv.frame @ np.array([0.0, -sign * k / 2, 1.0])
    rhs = sign * d["height"] / 2 + normal @ lv.centre
    return normal, rhs


def disc_heights(upper: Level, lower: Level) -> tuple[float, float, float]:
    """Anterior, middle and posterior height (mm) of the disc between two bodies."""
    centre, frame = mid_frame(upper, lower, upper.dims["disc"])
    depth = 0.5 * (upper.dims["depth"] + lower.dims["depth"])
    n_up, r_up = _surface(upper, top=False)
    if lower.kind == "sacrum":  # the sacral base is the plane u = 0 of the sacrum
        n_lo, r_lo = lower.frame[:, 2], float(lower.frame[:, 2] @ lower.centre)
    else:
        n_lo, r_lo = _surface(lower, top=True)
    out = []
    for a in (0.4 * depth, 0.0, -0.4 * depth):
        base, axis = centre + a * frame[:, 1], frame[:, 2]
        t_up = (r_up - n_up @ base) / (n_up @ axis)
        t_lo = (r_lo - n_lo @ base) / (n_lo @ axis)
        out.append(float(t_up - t_lo))
    return out[0], out[1], out[2]


def level_truth(
    levels: list[Level], inst: np.ndarray, body_voxels: np.ndarray, voxel_mm3: float, origin
) -> dict[int, dict[str, object]]:
    """Vertebra id -> dimensions (mm, mm², mm³), place and generator parameters of that level.

    ``body_voxels[X]``: voxels painted as X's body or as an endplate on it (an endplate's
    instance label names the disc it faces, so the label alone cannot tell).
    """
    allc = np.bincount(inst.ravel(), minlength=ENDPLATE_OFFSET + 64)
    below = {a.vid: b for a, b in itertools.pairwise(levels)}
    out: dict[int, dict[str, object]] = {}
    for lv in levels:
        d, x = lv.dims, lv.vid
        has_body = lv.kind not in ("C1", "sacrum")
        heights = (
            [float(body_height_at(lv, np.float64(a * d["depth"]))) for a in (0.5, 0.0, -BACK_WALL)]
            if has_body
            else [None] * 3
        )
        disc = disc_heights(lv, below[x]) if has_body else (None, None, None)
        out[x] = {
            "name": VERTEBRA_NAMES[x],
            "voxels": int(allc[x]),
            "body_height_anterior_mm": heights[0],
            "body_height_middle_mm": heights[1],
            "body_height_posterior_mm": heights[2],
            "body_depth_mm": d["depth"] if lv.kind != "C1" else None,
            "body_width_mm": d["width"] if lv.kind != "C1" else None,
            "body_volume_mm3": float(body_voxels[x] * voxel_mm3),
            "disc_height_anterior_mm": disc[0],
            "disc_height_mm": disc[1],
            "disc_height_posterior_mm": disc[2],
            "disc_volume_mm3": float(allc[IVD_OFFSET + x] * voxel_mm3) if has_body else None,
            "canal_area_mm2": float(np.pi * d["canal_ra"] * d["canal_rl"]),
            "cord_area_mm2": float(np.pi * d["cord_ra"] * d["cord_rl"])
            if d["cord_ra"] > 1
            else 0.0,
            "centre_world_mm": [float(v) for v in lv.centre + np.asarray(origin)],
            # Local axes (columns: l right, a anterior, u superior) as world RAS directions.
            "frame_world": [[float(v) for v in row] for row in lv.frame],
            "params": {k: float(v) for k, v in d.items()},
        }
    return out
