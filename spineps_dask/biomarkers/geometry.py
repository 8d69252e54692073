"""World-millimetre geometry on label masks: local axes, line and plane sampling.

Every measure is taken in world millimetres through the affine (voxel -> RAS+ mm), never in
voxel steps, so anisotropic spacing and any storage orientation give the same answer up to
nearest-neighbour sampling. Masks are sampled with ``scipy.ndimage.map_coordinates(order=0)``:
nearest neighbour keeps label maps label maps, and a fine step (0.25 mm by default, issue 7
item 5) makes the sampled length or area converge to that of the voxel union.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: World direction pointing superior (RAS+): orients axes so "up" means cranial.
SUPERIOR = np.array([0.0, 0.0, 1.0])
#: World direction pointing anterior (RAS+): fallback AP hint when no posterior elements exist.
ANTERIOR = np.array([0.0, 1.0, 0.0])


def voxel_to_world(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxel indices ``(n, 3)`` -> world mm ``(n, 3)`` through a 4x4 affine."""
    aff = np.asarray(affine, dtype=float)
    return np.asarray(index, dtype=float) @ aff[:3, :3].T + aff[:3, 3]


def world_to_voxel(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World mm ``(..., 3)`` -> fractional voxel coordinates ``(..., 3)``."""
    inv = np.linalg.inv(np.asarray(affine, dtype=float))
    return np.asarray(points, dtype=float) @ inv[:3, :3].T + inv[:3, 3]


def voxel_volume_mm3(affine: np.ndarray) -> float:
    """Volume of one voxel: the absolute determinant of the affine's 3x3 part (oblique-safe)."""
    return float(abs(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3])))


def mask_points(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinates ``(n, 3)`` of the voxel centres where ``mask`` is true."""
    return voxel_to_world(np.argwhere(mask), affine)


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 (zero vectors are returned unchanged)."""
    norm = float(np.linalg.norm(vector))
    return np.asarray(vector, dtype=float) / norm if norm > 0 else np.asarray(vector, dtype=float)


def point_to_point_axis(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Unit axis from ``lower`` to ``upper``, turned to point superior.

    The local spine axis at a body is the chord between the structures just above and below it
    (issue 7 item 5: "the direction between neighbouring body centroids"); a chord straddling
    the body is a central difference, exact to second order on a smoothly bent spine.
    """
    return superior(unit(np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)))


def plate_normal(points: np.ndarray) -> np.ndarray:
    """Least-variance principal axis of a point cloud ``(n, 3)``, pointing superior.

    For a thin plate (an intervertebral disc: ~10 mm high, ~35 mm deep) this is its normal.
    """
    centred = np.asarray(points, dtype=float) - np.mean(points, axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return superior(vectors[:, 0])


def superior(axis: np.ndarray) -> np.ndarray:
    """Flip ``axis`` if it points caudally, so every axis means the same "up"."""
    return -axis if float(axis @ SUPERIOR) < 0 else axis


def local_frame(axis: np.ndarray, anterior_hint: np.ndarray) -> tuple[np.ndarray, ...]:
    """Orthonormal ``(lateral, anterior, axis)`` with anterior = the hint made perpendicular.

    Falls back to world anterior when the hint is (nearly) parallel to the axis.
    """
    u = unit(axis)
    a = anterior_hint - (anterior_hint @ u) * u
    if np.linalg.norm(a) < 1e-3 * max(float(np.linalg.norm(anterior_hint)), 1e-9):
        a = ANTERIOR - (ANTERIOR @ u) * u
    a = unit(a)
    return unit(np.cross(a, u)), a, u


def sample_labels(labels: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Nearest-neighbour label at world points ``(..., 3)``; outside the array reads 0."""
    coords = world_to_voxel(points, affine)
    flat = coords.reshape(-1, 3).T
    values = ndimage.map_coordinates(labels, flat, order=0, mode="grid-constant", cval=0)
    return values.reshape(coords.shape[:-1])


def line_samples(
    mask: np.ndarray,
    affine: np.ndarray,
    point: np.ndarray,
    direction: np.ndarray,
    *,
    half_length_mm: float,
    step_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``t`` (mm along ``direction`` from ``point``) and whether each is inside.

    Samples sit at ``(k + 1/2) * step`` so a run of ``n`` inside samples stands for ``n * step``
    mm with no fence-post error.
    """
    n = max(1, int(np.ceil(half_length_mm / step_mm)))
    t = (np.arange(-n, n) + 0.5) * step_mm
    pts = np.asarray(point, dtype=float) + t[:, None] * unit(direction)
    inside = sample_labels(mask.astype(np.uint8, copy=False), affine, pts) > 0
    return t, inside


def chord_length(
    mask: np.ndarray,
    affine: np.ndarray,
    point: np.ndarray,
    direction: np.ndarray,
    *,
    half_length_mm: float,
    step_mm: float,
) -> float:
    """Length (mm) of ``mask`` met along the line through ``point``: inside samples x step."""
    _, inside = line_samples(
        mask, affine, point, direction, half_length_mm=half_length_mm, step_mm=step_mm
    )
    return float(inside.sum() * step_mm)


def sample_plane(
    labels: np.ndarray,
    affine: np.ndarray,
    centre: np.ndarray,
    basis: tuple[np.ndarray, np.ndarray],
    *,
    half_size_mm: float,
    step_mm: float,
) -> np.ndarray:
    """Labels on a square grid in the plane through ``centre`` spanned by two unit vectors.

    Returns an ``(m, m)`` array, first axis along ``basis[0]``; each sample stands for
    ``step_mm**2`` mm² of the plane, and the grid's centre lies on ``centre``.
    """
    n = max(1, int(np.ceil(half_size_mm / step_mm)))
    s = (np.arange(-n, n) + 0.5) * step_mm
    e0, e1 = (unit(b) for b in basis)
    pts = centre + s[:, None, None] * e0 + s[None, :, None] * e1
    return sample_labels(labels, affine, pts)


def component_nearest_centre(mask: np.ndarray) -> np.ndarray:
    """The connected component of a 2D mask that comes closest to the grid's centre.

    The plane through a vertebra meets its own canal; picking by distance keeps a far piece of
    another level's canal (a strongly bent spine) out of the area.
    """
    labelled, count = ndimage.label(mask)
    if count <= 1:
        return labelled > 0
    idx = np.argwhere(labelled > 0)
    centre = (np.asarray(mask.shape) - 1) / 2.0
    nearest = idx[np.argmin(((idx - centre) ** 2).sum(axis=1))]
    return labelled == labelled[tuple(nearest)]
