"""Make the instance mask agree with the semantic mask (paper section 2.4, reference doc step 6).

Order used by `postprocess_instances` (each step is usable on its own):

1. `remove_outside_spine`: vertebra voxels where the semantic mask has no vertebra part go.
2. `assign_leftovers`: semantic vertebra voxels with no instance join the touching vertebra.
3. `sacral_fragments`: small "vertebrae" at the bottom, touching the sacrum, are sacrum.
3b. `merge_split_vertebrae`: a small vertebra without a disc above, below C2, is a piece of
   its neighbour (beyond the paper; seen with the demo model).
4. `labeling.label_vertebrae` + `labeling.relabel`: anatomical ids.
5. `add_sacrum`: semantic sacrum (and those fragments) -> instance 26 (S1).
6. `attach_discs_endplates`: IVD -> 100+X (X the nearest vertebra above), endplates on either
   side of that IVD -> 200+X (the convention of the reference's own masks).

Arrays are (P, I, R) (axis 1 inferior), uint16 instance ids from `labels`.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from spineps_dask.labels import (
    ENDPLATE_OFFSET,
    IVD_OFFSET,
    VERTEBRA_IDS,
    VERTEBRA_SEMANTIC,
    Semantic,
    vertebra_sequence,
)
from spineps_dask.pipeline._measure import box_centroids
from spineps_dask.pipeline.labeling import (
    Labeling,
    LabelingSettings,
    centroids,
    discs_above,
    label_vertebrae,
    relabel,
    vertebra_ids_top_down,
)

logger = logging.getLogger(__name__)

_FULL = ndimage.generate_binary_structure(3, 3)
_FACE = ndimage.generate_binary_structure(3, 1)
_S1 = VERTEBRA_IDS["S1"]


def remove_outside_spine(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Zero instance voxels whose semantic label is not a vertebra part (41-50).

    Discs, endplates and the sacrum get their own instance labels from the semantic mask later,
    so a vertebra that bleeds into them loses those voxels too.

    Examples
    --------
    >>> inst = np.array([[[1, 1, 1]]], np.uint16); sem = np.array([[[49, 0, 100]]])
    >>> remove_outside_spine(inst, sem).tolist()
    [[[1, 0, 0]]]
    """
    out = instance.copy()
    out[~np.isin(semantic, VERTEBRA_SEMANTIC)] = 0
    return out


def _touch_counts(comp: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """How many face neighbours of ``comp`` carry each label (> 0)."""
    ring = ndimage.binary_dilation(comp, structure=_FACE) & ~comp
    vals = labels[ring]
    vals = vals[vals > 0]
    ids, counts = np.unique(vals, return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def _most_touching(counts: dict[int, int]) -> int:
    """The label with the most touching voxels; ties go to the smaller id."""
    return min(counts, key=lambda k: (-counts[k], k))


def _voxel_counts(instance: np.ndarray, ids: list[int]) -> np.ndarray:
    """Voxels of each of ``ids`` in ``instance``."""
    return np.bincount(instance.ravel().astype(np.intp), minlength=max(ids) + 1)[ids]


def _nearest_label(labels: np.ndarray) -> np.ndarray:
    """Each voxel's nearest non-zero label (Euclidean, in voxels)."""
    _, index = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return labels[tuple(index)]


def _padded_box(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, shape, strict=True)
    )


def assign_leftovers(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Give each semantic vertebra component without an instance to the most-touching vertebra.

    Components are 26-connected; touching counts face neighbours; ties go to the smaller id.
    A component touching no vertebra stays 0 (logged). A piece of one vertebra touches two
    vertebrae at most; a component touching more is a strip of unclaimed arches and processes
    along the column (seen with the demo model: one strip from C1 to T12, which the whole went
    to T11 and renamed the spine), and each of its voxels goes to the nearest vertebra instead.

    Examples
    --------
    >>> inst = np.array([[[1, 0, 0, 2, 2]]], np.uint16)
    >>> sem = np.array([[[49, 49, 0, 49, 49]]])
    >>> assign_leftovers(inst, sem).tolist()
    [[[1, 1, 0, 2, 2]]]
    """
    vertebrae = np.where(instance < IVD_OFFSET, instance, 0)
    left = np.isin(semantic, VERTEBRA_SEMANTIC) & (instance == 0)
    comps, _ = ndimage.label(left, structure=_FULL)
    out = instance.copy()
    lost = 0
    for i, box in enumerate(ndimage.find_objects(comps), start=1):
        if box is None:
            continue
        big = _padded_box(box, comps.shape)
        comp = comps[big] == i
        counts = _touch_counts(comp, vertebrae[big])
        if not counts:
            lost += 1
            continue
        if len(counts) > 2:
            out[big][comp] = _nearest_label(vertebrae[big])[comp]
            continue
        out[big][comp] = _most_touching(counts)
    if lost:
        logger.info("%d left-over vertebra components touch no vertebra", lost)
    return out


def sacral_fragments(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    inferior_axis: int = 1,
    max_fraction: float = 0.5,
) -> np.ndarray:
    """Mask of vertebra instances that are really pieces of the sacrum.

    A semantic model may call parts of the sacrum "corpus" (and its fused segments "disc"); the
    merge then makes small vertebrae below L5, every name above them shifts, and the sacrum
    anchor names the real L5 as L4 (seen on phantoms with the demo models). With the sacrum in
    view L5 lies whole above it, so from the bottom up, each lowest vertebra that touches the
    semantic sacrum and is smaller than ``max_fraction`` x the largest of the five lowest
    vertebrae is taken for sacrum; the first one that is not ends the search.

    Examples
    --------
    >>> sem = np.zeros((1, 14, 1), np.uint8); inst = np.zeros_like(sem, np.uint16)
    >>> sem[0, 0:3] = sem[0, 4:7] = sem[0, 8:11] = 49; sem[0, 3] = sem[0, 7] = 100
    >>> sem[0, 11] = 26; sem[0, 12] = 49; sem[0, 13] = 26
    >>> inst[0, 0:3], inst[0, 4:7], inst[0, 8:11], inst[0, 12] = 1, 2, 3, 4
    >>> sacral_fragments(inst, sem).ravel().nonzero()[0].tolist()
    [12]
    """
    out = np.zeros(instance.shape, bool)
    sacrum = semantic == Semantic.SACRUM
    ids = [int(v) for v in np.unique(instance) if 0 < v < IVD_OFFSET]
    if not sacrum.any() or len(ids) < 3:
        return out
    sizes = _voxel_counts(instance, ids)
    centres = box_centroids(instance, ids)
    levels = [centres[i][inferior_axis] for i in ids]
    # Lumbar-sized reference: the largest of the five lowest (a whole-spine median, half of it
    # cervical, kept a 10 000-voxel sacral piece under L5 as a vertebra; a median of the five
    # lowest is itself a fragment when three pieces lie on the sacrum).
    typical = float(np.max(np.asarray(sizes)[np.argsort(levels)[-5:]]))
    near_sacrum = ndimage.binary_dilation(sacrum, structure=_FACE)
    for k in np.argsort(levels)[::-1]:  # bottom first
        mask = instance == ids[k]
        if sizes[k] >= max_fraction * typical or not (mask & near_sacrum).any():
            break
        out |= mask
    if out.any():
        logger.info("%d vertebra voxels in small pieces on the sacrum: sacrum", out.sum())
    return out


def merge_split_vertebrae(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    inferior_axis: int = 1,
    max_fraction: float = 0.6,
) -> np.ndarray:
    """Join each small vertebra without a disc above it to the vertebra it touches most.

    From C2-C3 down to the sacrum every vertebra has a disc above it, so a "vertebra" below the
    top two without one, under ``max_fraction`` of its larger neighbour in the top-down order
    and not a lowest one that ends at the view's edge (cut by it, so small too), is a piece
    that the merge split off (one extra vertebra shifted every name below it on demo
    phantoms). A fused pair (block vertebra) has the size of two and is kept.

    Examples
    --------
    >>> sem = np.zeros((1, 16, 1), np.uint8); inst = np.zeros_like(sem, np.uint16)
    >>> sem[0, 0:3] = sem[0, 4:7] = sem[0, 8:10] = sem[0, 10:11] = sem[0, 12:15] = 49
    >>> sem[0, 3] = sem[0, 7] = sem[0, 11] = 100
    >>> inst[0, 0:3], inst[0, 4:7], inst[0, 8:10], inst[0, 10], inst[0, 12:15] = 1, 2, 3, 4, 5
    >>> merge_split_vertebrae(inst, sem).ravel().tolist()[8:11]
    [3, 3, 3]
    """
    out = instance.copy()
    verts = vertebra_ids_top_down(instance, inferior_axis=inferior_axis)
    flags = discs_above(instance, semantic, inferior_axis=inferior_axis)
    sizes = dict(zip(verts, _voxel_counts(instance, verts).tolist(), strict=True)) if verts else {}
    vertebrae = np.where(instance < IVD_OFFSET, instance, 0)
    other = tuple(a for a in range(instance.ndim) if a != inferior_axis)
    rows = np.flatnonzero(np.any(semantic > 0, axis=other))
    last = len(verts)
    if verts and rows.size:
        bottom = np.flatnonzero(np.any(instance == verts[-1], axis=other))[-1]
        if rows[-1] - bottom <= 2:
            last -= 1  # the lowest vertebra ends at the view's edge: cut by it, not split
    k = 2
    while k < last:
        v = verts[k]
        neighbours = verts[k - 1 : k] + verts[k + 1 : k + 2]
        k += 1
        if flags[v] or sizes[v] >= max_fraction * max(sizes[u] for u in neighbours):
            continue
        mask = out == v
        box = _padded_box(ndimage.find_objects(mask.astype(np.uint8))[0], mask.shape)
        counts = _touch_counts(mask[box], vertebrae[box])
        counts = {u: c for u, c in counts.items() if u in neighbours}
        if counts:
            winner = _most_touching(counts)
            out[mask] = winner
            vertebrae[mask] = winner
            sizes[winner] += sizes[v]
            verts.remove(v)
            k, last = k - 1, last - 1
            logger.info("vertebra piece %d without a disc above joined to %d", v, winner)
    return out


def add_sacrum(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Semantic sacrum voxels become instance 26 (S1)."""
    out = instance.copy()
    out[semantic == Semantic.SACRUM] = _S1
    return out


def attach_discs_endplates(
    instance: np.ndarray, semantic: np.ndarray, *, inferior_axis: int = 1
) -> np.ndarray:
    """Label IVD components 100+X and endplate components 200+X (X: the vertebra above).

    IVD: X is the vertebra nearest to the disc among those whose body centre lies above the
    disc's centre (body = corpus voxels, so the posterior elements of a tilted cervical spine do
    not shift it). A disc above the top vertebra gets the id preceding it in the anatomical
    sequence (none above C2: left 0). Endplate: the label of the disc it touches most, 200+X,
    so both endplates around IVD X are 200+X as in the reference masks; one touching no disc
    takes the vertebra above it like a disc.

    Examples
    --------
    >>> inst = np.array([20, 20, 0, 0, 0, 21, 21], np.uint16).reshape(1, 7, 1)  # axis 1: down
    >>> sem = np.array([49, 62, 100, 100, 62, 49, 49]).reshape(1, 7, 1)
    >>> attach_discs_endplates(inst, sem).ravel().tolist()
    [20, 220, 120, 120, 220, 21, 21]
    """
    verts = vertebra_ids_top_down(instance, inferior_axis=inferior_axis)
    out = instance.copy()
    if not verts:
        return out
    vertebrae = np.where(instance < IVD_OFFSET, instance, 0)
    body = np.isin(semantic, (Semantic.CORPUS, Semantic.CORPUS_BORDER))
    ref = {
        **centroids(instance, labels=verts),
        **box_centroids(np.where(body, vertebrae, 0), verts),
    }
    for label in (Semantic.DISC, Semantic.ENDPLATE):
        comps, _ = ndimage.label(semantic == label, structure=_FULL)
        discs = np.where((out >= IVD_OFFSET) & (out < ENDPLATE_OFFSET), out, 0)
        for i, box in enumerate(ndimage.find_objects(comps), start=1):
            if box is None:
                continue
            comp = comps[box] == i
            c = np.array([j.mean() + b.start for j, b in zip(np.nonzero(comp), box, strict=True)])
            x = _vertebra_above(c, verts, ref, inferior_axis)
            if label == Semantic.ENDPLATE:
                big = _padded_box(box, comps.shape)
                counts = _touch_counts(comps[big] == i, discs[big])
                if counts:
                    x = _most_touching(counts) - IVD_OFFSET
            if x is not None:
                offset = IVD_OFFSET if label == Semantic.DISC else ENDPLATE_OFFSET
                out[box][comp] = offset + x
    return out


def _nearest(c: np.ndarray, verts: list[int], vc: dict) -> int:
    return min(verts, key=lambda v: (float(np.linalg.norm(np.subtract(vc[v], c))), v))


def _vertebra_above(c: np.ndarray, verts: list[int], vc: dict, axis: int) -> int | None:
    above = [v for v in verts if vc[v][axis] < c[axis]]
    if above:
        return _nearest(c, above, vc)
    top = verts[0]
    seq = vertebra_sequence(has_t13=top == VERTEBRA_IDS["T13"], has_l6=top == VERTEBRA_IDS["L6"])
    if top in seq and seq.index(top) > seq.index(VERTEBRA_IDS["C2"]):
        return seq[seq.index(top) - 1]
    return None


def postprocess_instances(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    settings: LabelingSettings | None = None,
    clean: bool = True,
) -> tuple[np.ndarray, Labeling]:
    """Merge output (vertebrae 1..N) + cleaned semantic mask -> final anatomical instance mask.

    ``clean=False`` skips the mask-consistency steps (removal outside the semantic spine mask,
    left-over assignment): the paper's "SPINEPS w/o post-processing" of table 2. Labelling and
    the IVD/endplate instances are made either way, since an instance mask needs them.

    Returns the (P, I, R) uint16 instance mask and the `Labeling` (anchor, T13/L6 flags).
    """
    s = settings or LabelingSettings()
    fragments = np.zeros(instance.shape, bool)
    inst = instance
    if clean:
        inst = assign_leftovers(remove_outside_spine(instance, semantic), semantic)
        fragments = sacral_fragments(inst, semantic, inferior_axis=s.inferior_axis)
        inst = np.where(fragments, 0, inst).astype(inst.dtype, copy=False)
        inst = merge_split_vertebrae(inst, semantic, inferior_axis=s.inferior_axis)
    labeling = label_vertebrae(inst, semantic, settings=s)
    inst = add_sacrum(relabel(inst, labeling.mapping), semantic)
    inst[fragments] = _S1
    inst = attach_discs_endplates(inst, semantic, inferior_axis=s.inferior_axis)
    if not labeling.anchored:
        logger.warning("no C2 or sacrum anchor: vertebrae labelled from the top as C2 downwards")
    return inst.astype(np.uint16, copy=False), labeling
