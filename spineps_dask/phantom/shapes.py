"""Paint the spine's structures into label arrays, as implicit shapes in each vertebra's frame.

Each structure is an inequality in local millimetre coordinates ``(l, a, u)`` (right, anterior,
superior) of its vertebra, evaluated only inside the vertebra's bounding box on the target grid,
so the cost grows with the spine, not with the field of view. Painting order settles overlaps:
bodies and sacrum, then discs, then posterior elements, then canal and cord into what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from spineps_dask.labels import ENDPLATE_OFFSET, IVD_OFFSET, Semantic
from spineps_dask.phantom.anatomy import BACK_WALL, DENS_LENGTH, Level


@dataclass
class Canvas:
    """The RAS-aligned grid being painted: voxel centres per world axis and the label arrays."""

    axes: tuple[np.ndarray, np.ndarray, np.ndarray]
    semantic: np.ndarray
    instance: np.ndarray
    disc_signal: np.ndarray
    endplate_mm: float
    #: vertebra id of every body and endplate voxel (which body an endplate sits on; the
    #: instance label of an endplate names the disc it faces instead)
    owner: np.ndarray

    @classmethod
    def empty(cls, axes: tuple[np.ndarray, ...], endplate_mm: float) -> Canvas:
        shape = tuple(len(a) for a in axes)
        return cls(
            tuple(np.asarray(a, dtype=np.float32) for a in axes),  # type: ignore[arg-type]
            np.zeros(shape, np.uint8),
            np.zeros(shape, np.uint16),
            np.zeros(shape, np.float32),
            endplate_mm,
            np.zeros(shape, np.uint16),
        )


@dataclass
class Local:
    """Local coordinates of the voxels in one box: the box's slices and l, a, u arrays."""

    box: tuple[slice, slice, slice]
    l: np.ndarray  # noqa: E741 (l, a, u: the anatomical axis names used throughout)
    a: np.ndarray
    u: np.ndarray


def local_coords(canvas: Canvas, centre: np.ndarray, frame: np.ndarray, lo, hi) -> Local | None:
    """Local (l, a, u) coordinates inside the world box that holds local box ``[lo, hi]``."""
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
    world = centre[:, None] + frame @ corners
    box = []
    for k, ax in enumerate(canvas.axes):
        step = float(ax[1] - ax[0]) if len(ax) > 1 else 1.0
        i0 = int(np.floor((world[k].min() - ax[0]) / step))
        i1 = int(np.ceil((world[k].max() - ax[0]) / step)) + 1
        i0, i1 = max(i0, 0), min(i1, len(ax))
        if i1 <= i0:
            return None
        box.append(slice(i0, i1))
    rel = [
        (ax[s] - c).astype(np.float32) for ax, s, c in zip(canvas.axes, box, centre, strict=True)
    ]
    x, y, z = rel[0][:, None, None], rel[1][None, :, None], rel[2][None, None, :]
    f = frame.astype(np.float32)
    return Local(
        tuple(box),  # type: ignore[arg-type]
        x * f[0, 0] + y * f[1, 0] + z * f[2, 0],
        x * f[0, 1] + y * f[1, 1] + z * f[2, 1],
        x * f[0, 2] + y * f[1, 2] + z * f[2, 2],
    )


def paint(
    canvas: Canvas, loc: Local, mask: np.ndarray, sem: int, inst: int, *, over=()
) -> np.ndarray:
    """Write ``sem``/``inst`` where ``mask`` holds and the voxel is empty (or in ``over``).

    Returns the voxels written (a mask of ``loc.box``)."""
    region = canvas.semantic[loc.box]
    free = region == 0
    for label in over:
        free |= region == label
    mask = mask & free
    region[mask] = sem
    canvas.instance[loc.box][mask] = inst
    return mask


def _capsule(loc: Local, start, direction, length: float, radius: float, taper: float = 0.7):
    """Voxels within a tapering radius of a segment (start, direction in l, a, u; mm)."""
    d = np.asarray(direction, dtype=np.float32)
    d = d / np.linalg.norm(d)
    pl, pa, pu = loc.l - start[0], loc.a - start[1], loc.u - start[2]
    along = pl * d[0] + pa * d[1] + pu * d[2]
    t = np.clip(along, 0.0, length)
    dist2 = (pl - t * d[0]) ** 2 + (pa - t * d[1]) ** 2 + (pu - t * d[2]) ** 2
    r = radius * (1.0 - (1.0 - taper) * t / max(length, 1e-3))
    # Flat at the start (no round cap): processes grow out of the arch, not into the canal.
    return (dist2 <= r * r) & (along >= 0)


def paint_capsule(
    canvas: Canvas,
    lv: Level,
    start,
    direction,
    length: float,
    radius: float,
    labels: tuple[int, int],
    *,
    taper: float = 0.7,
    thin: float = 1.0,
) -> None:
    """Paint a tapered capsule of level ``lv`` (local mm), evaluated only in its own box.

    ``thin`` > 1 flattens it side to side (the l half-width becomes ``radius / thin``); the
    segment must then run in the a-u plane (``start[0] == direction[0] == 0``).
    """
    d = np.asarray(direction, dtype=float)
    d = d / np.linalg.norm(d)
    ends = np.array([start, np.asarray(start) + length * d])
    pad = np.array([radius / thin, radius, radius]) + 0.5
    loc = local_coords(canvas, lv.centre, lv.frame, ends.min(0) - pad, ends.max(0) + pad)
    if loc is None:
        return
    shape = Local(loc.box, loc.l * thin, loc.a, loc.u) if thin != 1.0 else loc
    mask = _capsule(shape, start, d, length, radius, taper)
    paint(canvas, loc, mask, *labels)


@overload
def body_height_at(lv: Level, a: np.ndarray) -> np.ndarray: ...
@overload
def body_height_at(lv: Level, a: np.floating) -> np.floating: ...
def body_height_at(lv: Level, a: np.ndarray | np.floating) -> np.ndarray | np.floating:
    """Body height (mm) at local AP position ``a``: linear between posterior and anterior."""
    span = (0.5 + BACK_WALL) * lv.dims["depth"]
    return lv.dims["height"] + (lv.height_anterior - lv.height_posterior) * (a / span)


def body_mask(lv: Level, loc: Local, endplate_mm: float) -> tuple[np.ndarray, ...]:
    """Vertebral body: elliptic cylinder with a flat back wall and a slight waist.

    Returns the body and its top and bottom endplate-thick layers.
    """
    ra, rl = lv.dims["depth"] / 2, lv.dims["width"] / 2
    half = body_height_at(lv, loc.a) / 2
    waist = 1.0 - 0.06 * (1.0 - np.clip(loc.u / half, -1, 1) ** 2)
    inside = (loc.a / ra) ** 2 + (loc.l / rl) ** 2 <= waist**2
    inside &= (loc.a >= -BACK_WALL * lv.dims["depth"]) & (np.abs(loc.u) <= half)
    return inside, loc.u > half - endplate_mm, loc.u < -half + endplate_mm


def paint_body(canvas: Canvas, lv: Level, *, above: int | None, disc_below: bool) -> None:
    """Body (49) with endplates (62) facing each neighbouring disc.

    Endplate instances follow the disc they face, as in the reference masks (the tptbox
    sample: both endplates around disc 100+X are 200+X): the lower endplate of X is 200+X,
    the upper one 200+``above`` (the vertebra above; None when there is no disc above, C2).
    """
    ra, rl = lv.dims["depth"] / 2, lv.dims["width"] / 2
    top = max(lv.height_anterior, lv.height_posterior) / 2 + 1
    up = top + (DENS_LENGTH + 1 if lv.vid == 2 else 0.0)
    loc = local_coords(canvas, lv.centre, lv.frame, (-rl - 1, -ra - 1, -top), (rl + 1, ra + 1, up))
    if loc is None:
        return
    inside, upper, lower = body_mask(lv, loc, canvas.endplate_mm)
    owner = canvas.owner[loc.box]
    if above is not None:
        owner[paint(canvas, loc, inside & upper, Semantic.ENDPLATE, ENDPLATE_OFFSET + above)] = (
            lv.vid
        )
    if disc_below:
        owner[paint(canvas, loc, inside & lower, Semantic.ENDPLATE, ENDPLATE_OFFSET + lv.vid)] = (
            lv.vid
        )
    owner[paint(canvas, loc, inside, Semantic.CORPUS, lv.vid)] = lv.vid
    if lv.vid == 2:  # the dens rises from the C2 body into the ring of C1
        base = float(body_height_at(lv, np.float32(0.0)) / 2) - 1.0
        dens = _capsule(loc, (0.0, -0.1 * ra, base), (0, 0.05, 1), DENS_LENGTH, 0.6 * ra, 0.8)
        paint(canvas, loc, dens, Semantic.CORPUS, lv.vid)


def top_surface_above(lv: Level, loc: Local) -> np.ndarray:
    """True above the level's upper surface (body top plane, or the sacral base)."""
    if lv.kind == "sacrum":
        return loc.u > 0
    return loc.u > body_height_at(lv, loc.a) / 2


def mid_frame(upper: Level, lower: Level, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and frame halfway between two levels (axis = mean of their axes): the frame in
    which a disc, or the canal at disc level, sits between two differently tilted vertebrae."""
    centre = upper.centre - upper.frame[:, 2] * (upper.dims["height"] / 2 + gap / 2)
    u_axis = upper.frame[:, 2] + lower.frame[:, 2]
    u_axis /= np.linalg.norm(u_axis)
    a_axis = upper.frame[:, 1] + lower.frame[:, 1]
    a_axis -= (a_axis @ u_axis) * u_axis
    a_axis /= np.linalg.norm(a_axis)
    return centre, np.column_stack([np.cross(a_axis, u_axis), a_axis, u_axis])


def paint_disc(canvas: Canvas, upper: Level, lower: Level, brightness: float) -> None:
    """Disc (100, instance 100+upper) filling the wedge between two bodies.

    ``brightness`` is the nucleus signal (degenerated discs are darker); it goes to
    ``canvas.disc_signal`` for the image.
    """
    ra = 0.5 * (upper.dims["depth"] + lower.dims["depth"]) / 2
    rl = 0.5 * (upper.dims["width"] + lower.dims["width"]) / 2
    centre, frame = mid_frame(upper, lower, upper.dims["disc"])
    reach = upper.dims["disc"] + 6.0
    loc = local_coords(canvas, centre, frame, (-rl - 1, -ra - 1, -reach), (rl + 1, ra + 1, reach))
    if loc is None:
        return
    r2 = (loc.a / ra) ** 2 + (loc.l / rl) ** 2
    mask = (r2 <= 1.0) & (loc.a >= -BACK_WALL * 2 * ra - 0.5)
    up_loc = _relocate(loc, canvas, centre, frame, upper)
    low_loc = _relocate(loc, canvas, centre, frame, lower)
    mask &= top_surface_above(upper, _flip(up_loc))
    mask &= top_surface_above(lower, low_loc)
    paint(canvas, loc, mask, Semantic.DISC, IVD_OFFSET + upper.vid)
    mine = canvas.instance[loc.box] == IVD_OFFSET + upper.vid  # only voxels the disc got
    signal = np.where(mine, 0.22 + (brightness - 0.22) * np.clip((1.0 - r2) / 0.5, 0, 1), 0)
    canvas.disc_signal[loc.box] = np.maximum(canvas.disc_signal[loc.box], signal)


def _relocate(loc: Local, canvas: Canvas, centre, frame, lv: Level) -> Local:
    """The same voxels' coordinates in another level's frame."""
    world_l = np.stack([loc.l, loc.a, loc.u], axis=-1) @ frame.T.astype(np.float32)
    shift = (centre - lv.centre).astype(np.float32)
    rel = world_l + shift
    f = lv.frame.astype(np.float32)
    out = rel @ f
    return Local(loc.box, out[..., 0], out[..., 1], out[..., 2])


def _flip(loc: Local) -> Local:
    """Mirror u (the bottom surface of a body is the top surface of its mirror image)."""
    return Local(loc.box, loc.l, loc.a, -loc.u)
