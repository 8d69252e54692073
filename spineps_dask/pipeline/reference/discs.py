"""Disc and endplate instance ids, and the endplate split, as spineps 2.1.3 adds them last.

`attach_discs_endplates` mirrors ``phase_post.add_ivd_ep_vert_label``: each disc component
becomes 100 + the vertebra above it, each endplate component 200 + the vertebra above it,
and `split_endplates` (``phase_post._split_endplates``) then relabels the semantic endplate
voxels 53 (inferior plate) / 52 (superior plate) by growing the vertebrae into them. Arrays
are (P, I, R): axis 1 points inferior, "above" means a smaller index.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spineps_dask.errors import InputError
from spineps_dask.pipeline.reference._arrays import (
    components,
    label_boxes,
    label_centroids,
    map_values,
    nearest_higher,
    nearest_lower,
    present_labels,
)

DISC = 100
ENDPLATE = 62
ENDPLATE_SUPERIOR = 52
ENDPLATE_INFERIOR = 53
ENDPLATE_LABELS = (ENDPLATE, ENDPLATE_INFERIOR, ENDPLATE_SUPERIOR)
CORPUS = 49
IVD_OFFSET = 100
ENDPLATE_OFFSET = 200
#: Ids that count as vertebrae here (``include_sacrum=False``): up to S1 (26), and T13 (28).
_LAST_VERTEBRA, _T13 = 26, 28
#: Vertebrae grow into the endplates for at most this many rounds less one
#: (``MAX_ENDPLATE_DILATION``).
MAX_ENDPLATE_ROUNDS = 15
#: Only ids below this grow into the endplates (``INSTANCE_LABEL_LIMIT``); 26 and 28 do.
INSTANCE_LABEL_LIMIT = 40


def _component_heights(
    semantic: np.ndarray, labels: tuple[int, ...]
) -> list[tuple[tuple[slice, ...], np.ndarray, float, int]]:
    """26-connected components of ``labels`` (one value never joins another), with centre row.

    Returns ``(box, voxel mask inside the box, centre along axis 1, semantic value)`` for each.
    """
    out = []
    for value in labels:
        comps, _ = components(semantic == value, connectivity=3)
        centres = label_centroids(comps)
        for lbl, box in enumerate(ndimage.find_objects(comps), start=1):
            if box is not None:
                out.append((box, comps[box] == lbl, float(centres[lbl][1]), value))
    return out


def _vertebra_heights(instance: np.ndarray, semantic: np.ndarray) -> dict[int, float]:
    """Centre row of each vertebra's body voxels (49), in ascending id order.

    A vertebra with no body voxels, the sacrum (26) in particular, gets row 0: the reference
    places it at the very top of the image, so a disc with no vertebra above it lands on the
    sacrum (S1 gets the top disc as 126).
    """
    labels = [v for v in present_labels(instance) if v <= _LAST_VERTEBRA or v == _T13]
    bodies = label_centroids(np.where(semantic == CORPUS, instance, 0))
    return {v: (float(bodies[v][1]) if v in bodies else 0) for v in labels}


def _first_at(heights: dict[int, float], row: float) -> int:
    """The smallest id whose centre row equals ``row`` (the reference's dict scan)."""
    return next(v for v, h in heights.items() if h == row)


def attach_discs_endplates(
    instance: np.ndarray, semantic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Label disc and endplate voxels after the vertebra above them; split the endplates.

    Heights are centre rows of each vertebra's body voxels; a vertebra without any (the
    sacrum) counts as row 0, the top of the image. Each disc component becomes 100 + the
    nearest vertebra above its centre; one above all of them gets 100 + (smallest id - 1), or
    0 when that is 0, except that with a sacrum present nothing is above row 0 and the disc
    becomes 126. Endplate components take 200 + the nearest vertebra above too, both plates
    of a disc the same one; a plate above all of them falls back to the smallest row. Ties
    go to the smaller id. With plates already split (52 / 53) in the semantic mask there is
    no offset and a superior plate takes the nearest vertebra below instead.

    Returns
    -------
    (instance, semantic)
        New uint16 instance; the semantic mask with every 62 voxel replaced by 52, 53, 62 or,
        where the split left it unclaimed but reached, 0 (see `split_endplates`).

    Raises
    ------
    InputError
        Discs or endplates but no vertebra: the reference fails there too (``min`` of nothing).
    """
    out = instance.astype(np.uint16)
    sem = semantic.copy()
    present = set(present_labels(semantic))
    has_split = bool(present & {ENDPLATE_SUPERIOR, ENDPLATE_INFERIOR})
    has_discs, has_endplates = DISC in present, ENDPLATE in present or has_split
    if not (has_discs or has_endplates):
        return out, sem
    heights = _vertebra_heights(instance, semantic)
    if not heights:
        raise InputError("discs or endplates but no vertebra to attach them to", step="post")
    rows = list(heights.values())
    if has_discs:
        discs = np.zeros_like(out)
        for box, mask, row, _ in _component_heights(semantic, (DISC,)):
            if row < min(rows):
                above = min(heights) - 1
            else:
                above = _first_at(heights, nearest_lower(rows, row))
            discs[box][mask] = IVD_OFFSET + above if above != 0 else 0
        out[semantic == DISC] = discs[semantic == DISC]
    if has_endplates:
        plates = np.zeros_like(out)
        for box, mask, row, value in _component_heights(semantic, ENDPLATE_LABELS):
            superior = has_split and value == ENDPLATE_SUPERIOR
            target = nearest_higher(rows, row) if superior else nearest_lower(rows, row)
            plates[box][mask] = _first_at(heights, target) + (0 if has_split else ENDPLATE_OFFSET)
        if has_split:
            on_plates = np.isin(semantic, ENDPLATE_LABELS)
            out[on_plates] = plates[on_plates]
        else:
            out[semantic == ENDPLATE] = plates[semantic == ENDPLATE]
            split = split_endplates(out, semantic)
            sem[semantic == ENDPLATE] = split[semantic == ENDPLATE]
    return out, sem


def split_endplates(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Which endplate voxels are inferior (53) or superior (52) plates; 62 for unreached ones.

    As spineps ``phase_post._split_endplates``. Each vertebra (ids below 40, ascending) grows
    one voxel per round (26-connected, through anything, inside its box grown by 15). An
    endplate voxel it reaches that no plate claimed yet adds its endplate instance id, mapped:
    200 + the vertebra's own id gives 53, 200 + the id of the vertebra handled just before
    gives 52 (before the first round that "previous" is 1; in every later round it starts as
    the last, largest id of the round before), any other id stays as it is. These sums
    accumulate: a voxel first reached by an unrelated vertebra holds a value that is neither
    52 nor 53 and ends as 0 (dropped from the semantic mask). Rounds stop when nothing new was
    claimed, all is claimed or after 14. Returns int32 with 52, 53, 62 or 0 on endplate
    voxels, 0 elsewhere.

    Growing r rounds reaches exactly the voxels within chessboard distance r, so one distance
    transform per vertebra replaces the reference's repeated dilations (same result).
    """
    plates = np.isin(semantic, ENDPLATE_LABELS)
    result = np.zeros(semantic.shape, dtype=np.int32)
    where = np.nonzero(plates)
    total = where[0].size
    if total == 0:
        return result
    plate_ids = instance[where].astype(np.int64)
    growing = [v for v in present_labels(instance) if v < INSTANCE_LABEL_LIMIT]
    # For each vertebra: the plate voxels inside its window and their distance to it.
    reach: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    windows = label_boxes(
        np.where(instance < INSTANCE_LABEL_LIMIT, instance, 0), MAX_ENDPLATE_ROUNDS
    )
    for v in growing:
        box = windows[v]
        inside = np.all([(w >= b.start) & (w < b.stop) for w, b in zip(where, box, strict=True)], 0)
        picked = np.flatnonzero(inside)
        local = tuple(w[picked] - b.start for w, b in zip(where, box, strict=True))
        dist = ndimage.distance_transform_cdt(instance[box] != v, metric="chessboard")[local]
        reach[v] = (picked, dist)
    sums = np.zeros(total, dtype=np.int64)
    previous, last_count = 1, -1
    for rounds in range(1, MAX_ENDPLATE_ROUNDS):
        claimed = int(np.count_nonzero((sums == ENDPLATE_INFERIOR) | (sums == ENDPLATE_SUPERIOR)))
        if claimed == last_count and last_count != 0:
            break
        last_count = claimed
        if claimed == total:
            break
        for v in growing:
            picked, dist = reach[v]
            hit = picked[dist <= rounds]
            hit = hit[(sums[hit] != ENDPLATE_INFERIOR) & (sums[hit] != ENDPLATE_SUPERIOR)]
            # A dict literal, as in the reference: when v == previous the second key wins (52).
            mapping = {
                ENDPLATE_OFFSET + v: ENDPLATE_INFERIOR,
                ENDPLATE_OFFSET + previous: ENDPLATE_SUPERIOR,
            }
            sums[hit] += map_values(plate_ids[hit], mapping)
            previous = v
    unclaimed = (sums != ENDPLATE_INFERIOR) & (sums != ENDPLATE_SUPERIOR)
    sums[unclaimed] += ENDPLATE
    keep = np.isin(sums, (ENDPLATE_INFERIOR, ENDPLATE_SUPERIOR, ENDPLATE))
    result[where] = np.where(keep, sums, 0)
    return result
