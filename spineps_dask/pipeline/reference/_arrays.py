"""Array primitives with the exact semantics of the TPTBox calls spineps 2.1.3 makes.

Each helper states which TPTBox function it stands in for and what of its behaviour matters
for identical masks: component numbering, label order in multi-label dilation, face-contact
counts, centroid arithmetic. Arrays are 3D; nothing here knows about anatomy.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

#: Structuring elements by TPTBox "connectivity" 1 (faces, 6), 2 (+edges, 18), 3 (+corners, 26).
STRUCTURES = {c: ndimage.generate_binary_structure(3, c) for c in (1, 2, 3)}


def components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Connected components of a binary mask, numbered 1..N.

    Stands in for cc3d via TPTBox ``np_connected_components``. Numbers follow the first voxel
    of each component in C (row-major) order, which is what cc3d gives for the C-contiguous
    copies TPTBox hands it; the one place the numbering decides anything is a volume tie in
    ``fix_posterior_fragments``.
    """
    labels, n = ndimage.label(np.ascontiguousarray(mask), structure=STRUCTURES[connectivity])
    return labels, int(n)


def present_labels(arr: np.ndarray) -> list[int]:
    """Sorted non-zero values of ``arr`` (TPTBox ``np_unique_withoutzero`` / ``NII.unique``)."""
    if arr.size == 0:
        return []
    small = arr.dtype.kind in "ub" or (arr.dtype.kind == "i" and int(arr.min()) >= 0)
    if small and int(arr.max()) < 2**20:  # a count per value beats sorting the volume
        return [int(v) for v in np.flatnonzero(np.bincount(arr.ravel().astype(np.intp))) if v]
    return [int(v) for v in np.unique(arr) if v != 0]


def label_centroids(arr: np.ndarray) -> dict[int, np.ndarray]:
    """Mean voxel index of every non-zero label, in ascending label order.

    cc3d's ``statistics`` (behind TPTBox ``np_center_of_mass``) divides exact integer sums by
    the count; summing the indices here in float64 is exact too, so ties between centroids
    come out as ties, as in the reference.
    """
    idx = np.nonzero(arr)
    if idx[0].size == 0:
        return {}
    values = arr[idx].astype(np.intp)
    counts = np.bincount(values)
    sums = [np.bincount(values, weights=i.astype(np.float64)) for i in idx]
    return {
        int(lbl): np.array([s[lbl] / counts[lbl] for s in sums])
        for lbl in np.flatnonzero(counts)
        if lbl != 0
    }


def label_volumes(arr: np.ndarray) -> dict[int, int]:
    """Voxel count of every non-zero label, ascending (TPTBox ``np_volume``)."""
    counts = np.bincount(arr.ravel().astype(np.intp))
    return {int(i): int(counts[i]) for i in np.flatnonzero(counts) if i != 0}


def bounding_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...] | None:
    """Box around the non-zero voxels, grown by ``pad`` and clamped to the array; None if empty.

    Mirrors TPTBox ``np_bbox_binary(px_dist=pad)`` (and ``NII.compute_crop(dist=pad)``).
    """
    out = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=others))
        if hits.size == 0:
            return None
        out.append(
            slice(max(int(hits[0]) - pad, 0), min(int(hits[-1]) + pad + 1, mask.shape[axis]))
        )
    return tuple(out)


def label_boxes(arr: np.ndarray, pad: int = 0) -> dict[int, tuple[slice, ...]]:
    """Box of every positive label of an integer array, grown by ``pad`` (one pass)."""
    found = ndimage.find_objects(arr.astype(np.intp, copy=False))
    return {
        lbl: grow_box(box, pad, arr.shape)
        for lbl, box in enumerate(found, start=1)
        if box is not None
    }


def grow_box(box: tuple[slice, ...], pad: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``box`` grown by ``pad`` voxels per side, clamped to ``shape``."""
    return tuple(
        slice(max(b.start - pad, 0), min(b.stop + pad, n)) for b, n in zip(box, shape, strict=True)
    )


def dilate_labels_in_mask(
    labels: np.ndarray, mask: np.ndarray, *, steps: int, connectivity: int
) -> np.ndarray:
    """Grow every label into background, one voxel per step, keeping only voxels in ``mask``.

    Mirrors TPTBox ``np_dilate_msk(arr, n_pixel=steps, connectivity=..., mask=mask,
    use_crop=False)``, whose order matters: within a step the labels grow one after another
    in ascending order (a lower label takes a contested voxel first), and after *each* label
    every voxel outside ``mask`` is cleared. So the first label grows once from its voxels
    outside the mask before they are cleared; every later growth starts inside the mask.

    Examples
    --------
    >>> lab = np.array([[[1, 0, 0, 2]]]); msk = np.array([[[1, 1, 1, 1]]])
    >>> dilate_labels_in_mask(lab, msk, steps=1, connectivity=1).tolist()
    [[[1, 1, 2, 2]]]
    """
    out = labels.copy()
    inside = mask != 0
    order = present_labels(labels)
    struct = STRUCTURES[connectivity]
    first = True
    for _ in range(steps):
        # A label's voxels only shrink (the mask) before its turn, so its box from the start of
        # the step, grown by the one voxel it may gain, holds everything it touches.
        boxes = label_boxes(out, pad=1)
        for lbl in order:
            box = boxes.get(lbl)
            if box is None:
                continue
            window = out[box]
            grown = ndimage.binary_dilation(window == lbl, structure=struct)
            window[grown & (window == 0)] = lbl
            if first:
                out[~inside] = 0  # the voxels outside the mask all go after the first label
                first = False
            else:
                window[~inside[box]] = 0  # only this label's new voxels can lie outside
    return out


def face_contacts(arr: np.ndarray, a: int, b: int) -> int:
    """Face-adjacent voxel pairs with one voxel ``a`` and the other ``b``.

    What TPTBox ``np_contacts(arr, connectivity=3)[(a, b)]`` reports: cc3d ``contacts`` with
    its default ``surface_area=True`` counts contact *area*, and edges and corners have none.
    """
    total = 0
    for axis in range(arr.ndim):
        lo = [slice(None)] * arr.ndim
        hi = [slice(None)] * arr.ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        x, y = arr[tuple(lo)], arr[tuple(hi)]
        total += int(np.count_nonzero((x == a) & (y == b)) + np.count_nonzero((x == b) & (y == a)))
    return total


def map_values(arr: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Replace values by ``mapping`` (others unchanged), as TPTBox ``np_map_labels``."""
    if not mapping:
        return arr.copy()
    top = max(int(arr.max()) if arr.size else 0, *mapping, *mapping.values()) + 1
    table = np.arange(top, dtype=np.int64)
    for key, value in mapping.items():
        table[key] = value
    return table[arr]


def nearest_lower(values: Iterable[float], x: float) -> float:
    """Largest value strictly below ``x``; the smallest value when none is below.

    As spineps ``phase_post.find_nearest_lower``: the fallback is the *smallest* value, so a
    structure above every vertebra still lands on the top one.
    """
    seq = list(values)
    below = [v for v in seq if v < x]
    return max(below) if below else min(seq)


def nearest_higher(values: Iterable[float], x: float) -> float:
    """Smallest value strictly above ``x``; the largest when none is above."""
    seq = list(values)
    above = [v for v in seq if v > x]
    return min(above) if above else max(seq)
