"""Posterior elements, the atlas ring, the sacrum, and the canal with the cord.

Shapes are in each level's local frame (``l`` right, ``a`` anterior, ``u`` superior, mm):
the arch is two pedicles plus a lamina ring around the canal; processes are tapered capsules
(spinous: posterior and caudal; transverse: lateral; articular: up and down from the
pedicle-lamina junction, the inferior pair medial and posterior to the superior pair of the
vertebra below, as at real facet joints).
"""

from __future__ import annotations

import numpy as np

from spineps_dask.labels import Semantic
from spineps_dask.phantom.anatomy import BACK_WALL, Level, cord_scale
from spineps_dask.phantom.shapes import (
    Canvas,
    Local,
    local_coords,
    mid_frame,
    paint,
    paint_capsule,
)

# Left is the subject's left (-x in RAS), i.e. negative local l.
_S = Semantic
# The epidural space while painting: not free, so no process grows into the bony canal; the
# generator sets it to background (0) once everything is painted.
EPIDURAL = 255
_SIDES = (
    (-1.0, _S.COSTALIS_LEFT, _S.ARTICULARIS_SUP_LEFT, _S.ARTICULARIS_INF_LEFT),
    (1.0, _S.COSTALIS_RIGHT, _S.ARTICULARIS_SUP_RIGHT, _S.ARTICULARIS_INF_RIGHT),
)


def _ellipse(loc: Local, a0: float, ra: float, rl: float, l0: float = 0.0) -> np.ndarray:
    return ((loc.a - a0) / ra) ** 2 + ((loc.l - l0) / rl) ** 2 <= 1.0


def paint_posterior(canvas: Canvas, lv: Level, *, gap_above: float, gap_below: float) -> None:
    """Arch (41), spinous (42), transverse (43/44) and articular (45-48) processes of a vertebra."""
    d = lv.dims
    ac, cra, crl, t, h = lv.canal_a, d["canal_ra"], d["canal_rl"], d["lamina"], d["height"]
    u0, hh = 0.1 * h, 0.32 * h
    back = -BACK_WALL * d["depth"]  # the body's back wall
    front = back + 1.5
    lo, hi = (-crl - t - 1, ac - cra - t - 1, u0 - hh - 1), (crl + t + 1, front + 1, u0 + hh + 1)
    loc = local_coords(canvas, lv.centre, lv.frame, lo, hi)
    if loc is not None:
        band = np.abs(loc.u - u0) <= hh
        ring = ~_ellipse(loc, ac, cra, crl) & _ellipse(loc, ac, cra + t, crl + t)
        lamina = ring & (loc.a < ac) & band
        # Pedicles: oblique bars from the body's posterolateral corner to the lamina ring
        # (converging forwards, steeply in the cervical spine where the canal is wider).
        l_ring = crl + 0.5 * t
        l_body = min(0.45 * d["width"] / 2, l_ring)
        frac = np.clip((back - loc.a) / (back - ac), 0.0, 1.0)
        # ... hugging the canal wall where the canal is wider than the straight path.
        wall = crl * np.sqrt(np.clip(1.0 - ((loc.a - ac) / cra) ** 2, 0.0, 1.0)) + 1.0
        off = np.abs(np.abs(loc.l) - np.maximum(l_body + (l_ring - l_body) * frac, wall))
        pedicle = (loc.a >= ac) & (loc.a <= front) & (off <= max(0.5 * t + 0.5, 2.5))
        pedicle &= np.abs(loc.u - u0) <= 0.8 * hh
        paint(canvas, loc, lamina | pedicle, Semantic.ARCUS, lv.vid)
    beta = np.deg2rad(d["spinous_deg"])
    thin = d["spinous_hh"] / (0.45 * t + 1.0)  # spinous processes are thin side to side
    start = (0.0, ac - cra - 0.5 * t, u0)
    direction = (0.0, -np.cos(beta), -np.sin(beta))
    spin = (Semantic.SPINOSUS, lv.vid)
    paint_capsule(canvas, lv, start, direction, d["spinous_len"], d["spinous_hh"], spin,
                  taper=0.6, thin=thin)  # fmt: skip
    alpha = np.deg2rad(d["trans_deg"])
    r = d["proc_r"]
    for side, costal, sup, inf in _SIDES:
        start = (side * (crl + 0.6 * t), ac + 0.3 * cra, u0 + 0.1 * h)
        direction = (side * np.cos(alpha), -np.sin(alpha), 0.0)
        paint_capsule(canvas, lv, start, direction, d["trans_len"], 0.8 * r, (costal, lv.vid))
        start = (side * (crl + 0.7 * t), ac - 0.1 * cra, u0 + 0.5 * hh)
        length = h / 2 - start[2] + 0.6 * gap_above + 0.3 * r
        paint_capsule(canvas, lv, start, (0, -0.2, 1), length, r, (sup, lv.vid), taper=0.8)
        start = (side * (crl + 0.2 * t), ac - 0.8 * cra, u0 - 0.5 * hh)
        length = h / 2 + start[2] + 0.6 * gap_below + 0.3 * r
        paint_capsule(canvas, lv, start, (0, -0.15, -1), length, 0.9 * r, (inf, lv.vid), taper=0.8)


def atlas_ring(lv: Level, c2: Level) -> tuple[float, float, float, float]:
    """Centre (a), inner AP and LR radii, lateral-mass width of C1's ring around dens and canal."""
    dens_front = -0.1 * c2.dims["depth"] / 2 + 0.3 * c2.dims["depth"] + 1.5
    back = lv.canal_a - lv.dims["canal_ra"]
    return 0.5 * (dens_front + back), 0.5 * (dens_front - back), lv.dims["canal_rl"], 7.0


def paint_atlas(canvas: Canvas, lv: Level, c2: Level) -> None:
    """C1: ring (41) with lateral masses, transverse processes, posterior tubercle; no body."""
    d = lv.dims
    centre, ra_in, rl_in, mass = atlas_ring(lv, c2)
    t = d["lamina"]
    ra_out, rl_out = ra_in + t, rl_in + mass
    lo, hi = (-rl_out - 1, centre - ra_out - 1, -8), (rl_out + 1, centre + ra_out + 1, 8)
    loc = local_coords(canvas, lv.centre, lv.frame, lo, hi)
    if loc is not None:
        ring = _ellipse(loc, centre, ra_out, rl_out) & ~_ellipse(loc, centre, ra_in, rl_in)
        ring &= np.abs(loc.u) <= 3.5 + 3.0 * (loc.l / rl_out) ** 2
        paint(canvas, loc, ring, Semantic.ARCUS, lv.vid)
    start = (0.0, centre - ra_out + 1, 0.0)
    paint_capsule(
        canvas, lv, start, (0, -1, -0.2), d["spinous_len"], 4.0, (Semantic.SPINOSUS, lv.vid)
    )
    for side, costal, _, _ in _SIDES:
        start = (side * (rl_out - 2), centre, 0.0)
        paint_capsule(
            canvas, lv, start, (side, 0, 0), d["trans_len"], d["proc_r"], (costal, lv.vid)
        )


def sacrum_shape(lv: Level, loc: Local) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sacrum mask and its canal: a tapering, forward-concave plate with alae at the top.

    Returns the sacrum, the sacral canal, and the AP centre line ``a(u)`` of the sacrum.
    """
    d = lv.dims
    length, depth = d["height"], d["depth"]
    wall = 6.0  # posterior wall of the sacral canal (fused laminae), mm
    ra0 = 0.5 * (depth + 2 * d["canal_ra"] + wall + 2)
    rl0 = d["width"] / 2
    t = np.clip(-loc.u / length, 0.0, 1.0)
    ac = depth / 2 - ra0 - 0.12 * length * np.sin(np.pi * t)
    ra = ra0 * (1 - 0.55 * t)
    ala = np.clip(1 - np.abs(t - 0.15) / 0.3, 0, 1)
    rl = rl0 * (1 + 0.9 * ala) * (1 - 0.65 * t)
    inside = ((loc.a - ac) / ra) ** 2 + (loc.l / rl) ** 2 <= 1.0
    inside &= (loc.u <= -0.4 * np.maximum(np.abs(loc.l) - rl0, 0)) & (loc.u >= -length)
    shrink = np.clip(1 - t / 0.75, 0, 1)
    cra, crl = d["canal_ra"] * shrink * 0.8 + 1e-3, d["canal_rl"] * shrink * 0.9 + 1e-3
    canal_a = ac - ra + wall * (1 - 0.5 * t) + cra
    canal = ((loc.a - canal_a) / cra) ** 2 + (loc.l / crl) ** 2 <= 1.0
    canal &= (loc.u <= 6.0) & (t < 0.75)
    return inside, canal, ac


def paint_sacrum(canvas: Canvas, lv: Level) -> None:
    """Sacrum (26, instance 26) with its canal (61) carved in."""
    d = lv.dims
    rl = d["width"] / 2 * 1.9 + 2
    lo = (-rl, -d["depth"] - 2 * d["canal_ra"] - 0.12 * d["height"] - 8, -d["height"] - 2)
    loc = local_coords(canvas, lv.centre, lv.frame, lo, (rl, d["depth"] / 2 + 2, 8))
    if loc is None:
        return
    inside, canal, _ = sacrum_shape(lv, loc)
    paint(canvas, loc, inside, Semantic.SACRUM, lv.vid)
    paint(canvas, loc, canal, Semantic.CANAL, 0, over=(Semantic.SACRUM,))


def _paint_tube(
    canvas: Canvas,
    centre,
    frame,
    ac: float,
    dims: dict,
    u_range,
    cord_offset,
    sac_inset,
    conus: tuple[float, ...] | None = None,
) -> None:
    """Dural sac (61) with the cord (60) inside, for local u in ``u_range``.

    The sac is the bony canal's ellipse, its back and front moved in by ``sac_inset``
    (posterior, anterior) canal AP radii (`PhantomSpec.sac_inset`; the space left is epidural,
    label 0); the cord's centre sits ``cord_offset`` (anterior, right) sac radii from the
    sac's (`PhantomSpec.cord_offset`). ``conus``: the arc length of ``centre`` and a set
    conus (`anatomy.conus_arc`: end and taper, which shrink the cord along the tube, and the
    filum's length and radius below the end)."""
    cra, crl = dims["canal_ra"], dims["canal_rl"]
    lo, hi = (-crl - 1, ac - cra - 1, u_range[0]), (crl + 1, ac + cra + 1, u_range[1])
    loc = local_coords(canvas, centre, frame, lo, hi)
    if loc is None:
        return
    back, front = sac_inset
    shrink = 1.0 - (back + front) / 2
    sa, sra, srl = ac + (back - front) * cra / 2, shrink * cra, shrink * crl
    sac = _ellipse(loc, sa, sra, srl)
    paint(canvas, loc, sac, Semantic.CANAL, 0)
    if back > 0 or front > 0:
        paint(canvas, loc, _ellipse(loc, ac, cra, crl) & ~sac, EPIDURAL, 0)
    if dims["cord_ra"] > 1.0:
        da, dl = cord_offset
        ra, rl, ca = dims["cord_ra"], dims["cord_rl"], sa + da * sra
        if conus is None:
            cord = _ellipse(loc, ca, ra, rl, dl * srl)
        else:
            s = conus[0] - loc.u  # arc length down the column
            k = cord_scale(s, conus[1:])
            cord = _ellipse(loc, ca, ra * k + 1e-6, rl * k + 1e-6, dl * srl) & (k > 0)
            end, _, filum, fr = conus[1:]
            if filum:
                below = (s >= end) & (s <= end + filum)
                cord |= _ellipse(loc, ca, fr, 2.5 * fr, dl * srl) & below
        paint(canvas, loc, cord & sac, Semantic.CORD, 0, over=(Semantic.CANAL,))


def paint_canal(
    canvas: Canvas,
    lv: Level,
    cord_offset: tuple[float, float],
    sac_inset: tuple[float, float] = (0.0, 0.0),
    conus: tuple[float, ...] | None = None,
) -> None:
    """Canal and cord at the level of one vertebra's body (C1: up into the foramen magnum);
    ``conus``: a set conus (`anatomy.conus_arc`)."""
    h = lv.dims["height"]
    top = h / 2 + (40.0 if lv.kind == "C1" else 0.5)
    u_range = (-h / 2 - 0.5, top)
    at = None if conus is None else (0.5 * (lv.s_top + lv.s_bottom), *conus)
    _paint_tube(
        canvas, lv.centre, lv.frame, lv.canal_a, lv.dims, u_range, cord_offset, sac_inset, at
    )


def paint_canal_gap(
    canvas: Canvas,
    upper: Level,
    lower: Level,
    gap: float,
    cord_offset: tuple[float, float],
    sac_inset: tuple[float, float] = (0.0, 0.0),
    conus: tuple[float, ...] | None = None,
) -> None:
    """Canal and cord at disc level, in the frame halfway between the two vertebrae, so the
    tube bends smoothly instead of bulging where two tilted segments overlap."""
    centre, frame = mid_frame(upper, lower, gap)
    dims = {k: 0.5 * (upper.dims[k] + lower.dims[k]) for k in ("canal_ra", "canal_rl")}
    dims |= {k: min(upper.dims[k], lower.dims[k]) for k in ("cord_ra", "cord_rl")}
    ac = 0.5 * (upper.canal_a + lower.canal_a)
    u_range = (-gap / 2 - 1.0, gap / 2 + 1.0)
    at = None if conus is None else (upper.s_bottom + gap / 2, *conus)
    _paint_tube(canvas, centre, frame, ac, dims, u_range, cord_offset, sac_inset, at)
