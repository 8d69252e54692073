"""Vertebra-level fixes and numbering, as spineps 2.1.3 applies them after the reconciliation.

In order: `merge_split_top_vertebra` (two stacked instances at the top that are one
vertebra), `fix_posterior_fragments` (a stray arch piece that only touches a neighbour),
`number_top_to_bottom`, then `apply_overrides` (sacrum, metal and dens labels from the
semantic mask). Arrays are (P, I, R): axis 1 points inferior.
"""

from __future__ import annotations

import numpy as np

from spineps_dask.pipeline.reference._arrays import (
    components,
    face_contacts,
    label_boxes,
    label_centroids,
    label_volumes,
    map_values,
    present_labels,
)
from spineps_dask.pipeline.resolution import REFERENCE_ZOOM

DISC = 100
ENDPLATE = 62
CORPUS = 49
ARCUS = 41
SPINOSUS = 42
DENS = 51
C2 = 2
S1 = 26
METAL = 80
#: The upper of two stacked instances is merged only if smaller than this fraction of the lower
#: (``MERGED_VERTEBRA_SIZE_RATIO``) ...
MERGED_SIZE_RATIO = 0.5
#: ... and they share more than this contact area (``MERGED_VERTEBRA_MIN_CONTACT_MM2``: 20
#: voxel faces at the reference zoom).
MERGED_MIN_CONTACT_MM2 = 20 * float(np.prod(REFERENCE_ZOOM)) ** (2.0 / 3.0)
#: Only instances up to this id are checked for posterior fragments
#: (``proc_functions.MAX_VERTEBRA_INSTANCE_LABEL``).
MAX_FRAGMENT_CHECK_LABEL = 25
#: Components of a vertebra looked at: the largest is the vertebra, the next two are candidates.
FRAGMENT_COMPONENTS = 3

_OPPOSITE = {"P": "A", "A": "P", "I": "S", "S": "I", "R": "L", "L": "R"}
_PIR = ("P", "I", "R")


def contact_threshold_voxels(zoom: tuple[float, float, float]) -> int:
    """``MERGED_MIN_CONTACT_MM2`` in voxel faces at ``zoom``.

    As spineps ``resolution.isotropic_area_to_voxels``: the mean face area is the voxel volume
    to the power 2/3 (whatever the axes), Python's ``round`` (half to even), at least 1.
    """
    face = float(np.prod(zoom)) ** (2.0 / 3.0)
    return max(round(MERGED_MIN_CONTACT_MM2 / face), 1)


def _height_axis(scan_orientation: str) -> tuple[int, int]:
    """P-I-R axis and sign of the reference's "height": axis 1 of the scan's own orientation.

    ``detect_and_solve_merged_vertebra`` sorts by centre index along axis 1 *without*
    reorienting, so on a R-A-S scan its "top" is the most posterior structure and on A-S-R
    the lowest one. Returns ``(axis, sign)`` such that sorting by ``sign * centre[axis]`` in
    P-I-R reproduces that order.
    """
    code = scan_orientation[1]
    for axis, pir in enumerate(_PIR):
        if code == pir:
            return axis, 1
        if code == _OPPOSITE[pir]:
            return axis, -1
    raise ValueError(f"orientation {scan_orientation!r}: axis code {code!r} is not one of PIRASL")


def merge_split_top_vertebra(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    zoom: tuple[float, float, float],
    scan_orientation: str = "PIR",
) -> np.ndarray:
    """Merge the first instance into the second when both come before every disc.

    As spineps ``phase_post.detect_and_solve_merged_vertebra`` (meant for a C2 split in
    two). Discs (100 and endplates 62, 26-connected) and vertebrae (centre of their body and
    arch voxels, 49 and 41) are sorted by centre along axis 1 of ``scan_orientation``,
    ascending; ties keep discs first, then vertebrae by id. When the first two are
    vertebrae, the first has under half the voxels of the second and they share more than
    `contact_threshold_voxels` faces, the first takes the second's id.
    """
    axis, sign = _height_axis(scan_orientation)
    discs, _ = components(np.isin(semantic, (DISC, ENDPLATE)), connectivity=3)
    entries = [(sign * c[axis], True, 0) for c in label_centroids(discs).values()]
    volumes = label_volumes(instance)
    body_arch = np.where(np.isin(semantic, (CORPUS, ARCUS)), instance, 0)
    entries += [(sign * c[axis], False, lbl) for lbl, c in label_centroids(body_arch).items()]
    entries.sort(key=lambda e: e[0])  # stable, as the reference's sorted dict
    if len(entries) < 2 or entries[0][1] or entries[1][1]:
        return instance
    upper, lower = entries[0][2], entries[1][2]
    if not volumes[upper] < MERGED_SIZE_RATIO * volumes[lower]:
        return instance
    pair = np.where(instance == upper, 1, 0) + np.where(instance == lower, 2, 0)
    if face_contacts(pair, 1, 2) <= contact_threshold_voxels(zoom):
        return instance
    out = instance.copy()
    out[instance == upper] = lower
    return out


def fix_posterior_fragments(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Hand a detached arch/spinous piece of a vertebra to the one neighbour near it.

    As spineps ``proc_functions.fix_wrong_posterior_instance_label``. For each id 1..25, the
    26-connected components of that vertebra are ranked by size (ties: first voxel in P-I-R
    C order); the 2nd and 3rd largest are candidates. A candidate made only of arcus (41) and
    spinous process (42) is relabelled when exactly one other id appears in its bounding box
    grown by one voxel. That box test, not adjacency, is the reference's notion of "touching";
    and the ids seen are those before any relabelling in this step.
    """
    out = instance.copy()
    checked = np.where(instance <= MAX_FRAGMENT_CHECK_LABEL, instance, 0)
    for vert, vert_box in label_boxes(checked, pad=1).items():
        # Inside the vertebra's box grown by one, each piece's own box grown by one is the
        # same as it would be in the whole volume (both are clamped at the same borders).
        comps, n = components(instance[vert_box] == vert, connectivity=3)
        if n < 2:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        ranked = sorted(range(1, n + 1), key=lambda k: -sizes[k - 1])[:FRAGMENT_COMPONENTS]
        sem_v, inst_v, out_v = semantic[vert_box], instance[vert_box], out[vert_box]
        comp_boxes = label_boxes(comps, pad=1)
        for comp_id in ranked[1:]:
            box = comp_boxes[comp_id]
            piece = comps[box] == comp_id
            if not set(present_labels(sem_v[box][piece])) <= {ARCUS, SPINOSUS}:
                continue
            around = inst_v[box].copy()
            around[piece] = 0
            neighbours = present_labels(around)
            if len(neighbours) == 1 and neighbours[0] != vert:
                out_v[box][piece] = neighbours[0]
    return out


def number_top_to_bottom(instance: np.ndarray, *, labeling_offset: int = 1) -> np.ndarray:
    """Renumber instances ``1 + labeling_offset, 2 + labeling_offset, ...`` from the top.

    As spineps ``phase_post.label_instance_top_to_bottom``: sorted by centre of mass along
    P-I-R axis 1 (ties: smaller id first). Every id present is renumbered, so with 25 or
    more vertebrae and offset 1 the lowest one gets 26, the sacrum's id. Returns uint16.
    """
    centres = label_centroids(instance)
    order = sorted(centres, key=lambda lbl: centres[lbl][1])
    mapping = {lbl: rank + 1 + labeling_offset for rank, lbl in enumerate(order)}
    return map_values(instance, mapping).astype(np.uint16)


def apply_overrides(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    sacrum_ids: tuple[int, ...] = (S1,),
    metal_ids: tuple[int, ...] = (METAL,),
) -> np.ndarray:
    """Sacrum voxels become S1 (26), metal 80 and the dens C2, in that order.

    As the three assignments in spineps ``phase_post.phase_postprocess_combined`` that follow
    the numbering; they overwrite whatever instance was there.
    """
    out = instance.copy()
    out[np.isin(semantic, sacrum_ids)] = S1
    out[np.isin(semantic, metal_ids)] = METAL
    out[semantic == DENS] = C2
    return out
