"""Anatomical names for merged vertebrae (1..N top -> bottom), centroids per instance.

The merge numbers vertebrae 1..N from the top; which one is C2 or L5 is decided here from cues
in the semantic mask (reference doc "Post-processing", "final top-to-bottom labelling"):

- C2 anchor: C1-C2 and the skull-C1 junction have no disc, so the first vertebra without a disc
  above it followed by vertebrae that do have one is C2 (C1, which has no body, may be above it).
- sacrum anchor: the vertebra directly above the sacrum is L5 (L6 or T13 when counting down
  from C2 finds one vertebra too many; see `extra_vertebra_name`).
- no anchor: the top vertebra is called C2, as the reference does without its labelling model,
  and the result is flagged ``anchored=False``.

Arrays are in P-I-R instance space (axis 1 inferior), as elsewhere in this package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from spineps_dask.labels import (
    ENDPLATE_OFFSET,
    IVD_OFFSET,
    VERTEBRA_IDS,
    Semantic,
    vertebra_sequence,
)
from spineps_dask.pipeline._measure import box_centroids

logger = logging.getLogger(__name__)

_FULL = ndimage.generate_binary_structure(3, 3)
_C2, _L5 = VERTEBRA_IDS["C2"], VERTEBRA_IDS["L5"]
#: C2..L5 without variants (reference anatomy: 6 cervical below C1, 12 thoracic, 5 lumbar).
_C2_TO_L5 = vertebra_sequence().index(_L5) - vertebra_sequence().index(_C2) + 1
#: The conus medullaris ends between mid-T12 and upper L3 in adults, mean the lower third of
#: L1 (Saifuddin et al., Spine 1998; 504 MRIs): a naming that puts the end of the cord below
#: L3's centre is implausible.
_LOWEST_CONUS = VERTEBRA_IDS["L3"]


@dataclass(frozen=True)
class LabelingSettings:
    """Labelling choices.

    ``extra_vertebra``: name given to the one extra vertebra found between C2 and the sacrum.
    The count alone cannot tell a 13th thoracic from a 6th lumbar; ``"auto"`` calls it L6 (the
    common call) unless the end of the spinal cord says T13 (`extra_vertebra_name`).
    ``min_sacrum_size``: sacrum voxels needed to trust it as an anchor.
    ``top_margin``: voxels (along the inferior axis) between the top vertebra and the top of the
    labelled field of view needed before a missing disc above it can mean C2; closer, the disc
    may simply be out of view (a lumbar scan's top vertebra is not C2).
    """

    extra_vertebra: Literal["auto", "L6", "T13"] = "auto"
    min_sacrum_size: int = 250
    inferior_axis: int = 1
    top_margin: int = 4


@dataclass(frozen=True)
class Labeling:
    """Result of `label_vertebrae`: merge id -> anatomical id, and how it was anchored."""

    mapping: dict[int, int]
    anchor: Literal["C2", "sacrum", "none"]
    has_t13: bool = False
    has_l6: bool = False

    @property
    def anchored(self) -> bool:
        return self.anchor != "none"


def vertebra_ids_top_down(instance: np.ndarray, *, inferior_axis: int = 1) -> list[int]:
    """Vertebra ids (< 100) present in ``instance``, sorted by inferior centre of mass."""
    cents = centroids(instance, labels=_vertebra_ids(instance))
    return sorted(cents, key=lambda k: (cents[k][inferior_axis], k))


def _vertebra_ids(instance: np.ndarray) -> list[int]:
    ids = np.flatnonzero(np.bincount(instance.ravel().astype(np.intp)))
    return [int(i) for i in ids if 0 < i < IVD_OFFSET]


def centroids(
    instance: np.ndarray, *, labels: list[int] | None = None, affine: np.ndarray | None = None
) -> dict[int, tuple[float, float, float]]:
    """Centre of mass of each instance label, in voxels or (with ``affine``) in mm.

    Examples
    --------
    >>> m = np.zeros((1, 4, 1), np.uint16); m[0, 2:, 0] = 20
    >>> centroids(m)
    {20: (0.0, 2.5, 0.0)}
    """
    pts = box_centroids(instance, labels)
    if affine is not None:
        aff = np.asarray(affine, dtype=float)
        pts = {k: tuple(aff[:3, :3] @ np.asarray(p) + aff[:3, 3]) for k, p in pts.items()}
    return {k: tuple(float(v) for v in p) for k, p in pts.items()}  # type: ignore[misc]


def discs_above(
    instance: np.ndarray,
    semantic: np.ndarray,
    *,
    inferior_axis: int = 1,
    min_fraction: float = 0.1,
) -> dict[int, bool]:
    """For each vertebra id: is there an IVD (semantic 100) directly above it?

    Each disc component is given to the vertebra nearest to it (centroid distance) among those
    whose centre lies below the disc's centre. Components under ``min_fraction`` of the median
    disc component are ignored: a 30-voxel disc fragment between C1 and C2 hid the C2 anchor
    of whole-spine views (the first vertebra without a disc above it), seen with the demo model.
    """
    verts = vertebra_ids_top_down(instance, inferior_axis=inferior_axis)
    flags = dict.fromkeys(verts, False)
    if not verts:
        return flags
    vc = centroids(instance, labels=verts)
    comps, n = ndimage.label(semantic == Semantic.DISC, structure=_FULL)
    if n == 0:
        return flags
    sizes = np.bincount(comps.ravel())[1:]
    kept = [k + 1 for k in np.flatnonzero(sizes >= min_fraction * np.median(sizes))]
    for dc in centroids(comps, labels=kept).values():
        below = [v for v in verts if vc[v][inferior_axis] > dc[inferior_axis]]
        if below:
            nearest = min(below, key=lambda v: (float(np.linalg.norm(np.subtract(vc[v], dc))), v))
            flags[nearest] = True
    return flags


def _c2_start(
    verts: list[int],
    flags: dict[int, bool],
    instance: np.ndarray,
    semantic: np.ndarray,
    s: LabelingSettings,
) -> int | None:
    """Index in ``verts`` of C2 when the disc pattern at the top says so, else None."""
    if not verts:
        return None
    f = [flags[v] for v in verts]
    if len(f) >= 3 and not f[1] and f[2]:
        # verts[0] is C1: below C2 every vertebra has a disc above it, so a second vertebra
        # without one is C2, whatever the model put over C1 (a "disc" at the skull base, seen
        # with the demo model, is no reason to lose the anchor).
        return 1
    if not (len(f) >= 2 and not f[0] and f[1]):
        return None
    axis = s.inferior_axis
    other = tuple(a for a in range(instance.ndim) if a != axis)
    fov_top = int(np.argmax(np.any(semantic > 0, axis=other)))  # canal reaches the FOV edge
    vert_top = int(np.argmax(np.any(instance == verts[0], axis=other)))
    if vert_top - fov_top < s.top_margin:
        return None  # the top vertebra is at the edge of the view: its disc may be missing
    return 0


def label_vertebrae(
    instance: np.ndarray, semantic: np.ndarray, *, settings: LabelingSettings | None = None
) -> Labeling:
    """Decide the anatomical id of every merged vertebra.

    Parameters
    ----------
    instance : ndarray (P, I, R), uint16, vertebrae 1..N from the merge (ids < 100)
    semantic : ndarray (P, I, R), the cleaned semantic mask (discs 100, sacrum 26)

    Returns
    -------
    Labeling
        ``mapping`` sends each merge id to a `labels.VERTEBRA_IDS` value; ids that do not fit the
        sequence (more vertebrae than a spine has) are left out, i.e. dropped by `relabel`.
    """
    s = settings or LabelingSettings()
    ax = s.inferior_axis
    verts = vertebra_ids_top_down(instance, inferior_axis=ax)
    if not verts:
        return Labeling({}, "none")
    flags = discs_above(instance, semantic, inferior_axis=ax)
    c2 = _c2_start(verts, flags, instance, semantic, s)
    sacrum = _above_sacrum(instance, semantic, verts[-1], s)
    if c2 is None and sacrum and len(verts) == _C2_TO_L5 + 1 and flags[verts[1]]:
        # Counting up from L5 would call the top vertebra C1, but C1-C2 has no disc and one
        # lies under it: it is C2, cut by the view's edge, over a spine with an extra vertebra.
        c2 = 0
    if c2 is not None:
        from_c2 = len(verts) - c2
        extra = from_c2 > _C2_TO_L5
        if sacrum and from_c2 not in (_C2_TO_L5, _C2_TO_L5 + 1):
            logger.warning("C2 and sacrum anchors disagree: %d vertebrae from C2 to L5", from_c2)
        name = extra_vertebra_name(instance, semantic, verts, c2, s) if extra else None
        has_t13, has_l6 = name == "T13", name == "L6"
        seq = vertebra_sequence(has_t13=has_t13, has_l6=has_l6)[:-1]  # no S1
        first = seq.index(_C2) - c2
        return Labeling(_zip(verts, seq[first:]), "C2", has_t13, has_l6)
    if sacrum:
        seq = vertebra_sequence()[:-1]
        up = list(reversed(seq))  # L5, L4, ... C1
        return Labeling(_zip(list(reversed(verts)), up), "sacrum")
    seq = vertebra_sequence()[:-1]
    return Labeling(_zip(verts, seq[seq.index(_C2) :]), "none")


def anchor_positions(
    instance: np.ndarray, semantic: np.ndarray, *, settings: LabelingSettings | None = None
) -> tuple[int | None, bool]:
    """The cues `label_vertebrae` anchors on, for another naming to use: the vertebra the disc
    pattern calls C2 (its id, or None) and whether the lowest vertebra sits on the sacrum.

    ``instance`` may be a final mask: the sacrum (26), discs and endplates (ids >= 100) are
    left out of the vertebrae.
    """
    s = settings or LabelingSettings()
    vert = np.where((instance < IVD_OFFSET) & (instance != VERTEBRA_IDS["S1"]), instance, 0)
    verts = vertebra_ids_top_down(vert, inferior_axis=s.inferior_axis)
    if not verts:
        return None, False
    flags = discs_above(vert, semantic, inferior_axis=s.inferior_axis)
    c2 = _c2_start(verts, flags, vert, semantic, s)
    return (verts[c2] if c2 is not None else None), _above_sacrum(vert, semantic, verts[-1], s)


def extra_vertebra_name(
    instance: np.ndarray,
    semantic: np.ndarray,
    verts: list[int],
    c2: int,
    s: LabelingSettings,
) -> Literal["L6", "T13"]:
    """L6 or T13 for a spine with one vertebra too many from C2 (index ``c2`` in ``verts``).

    With ``"auto"``: T13 when naming the extra vertebra L6 would put the end of the cord below
    the centre of L3, outside the adult range (``_LOWEST_CONUS``); then T13 moves it one level
    up. Otherwise, and when the cord's end is not seen, L6.
    """
    if s.extra_vertebra != "auto":
        return s.extra_vertebra
    above = vertebra_above_conus(instance, semantic, verts, inferior_axis=s.inferior_axis)
    if above is None:
        return "L6"
    seq = vertebra_sequence(has_l6=True)
    as_l6 = seq.index(_C2) - c2 + verts.index(above)  # its place in the sequence named with L6
    return "T13" if as_l6 >= seq.index(_LOWEST_CONUS) else "L6"


def vertebra_above_conus(
    instance: np.ndarray, semantic: np.ndarray, verts: list[int], *, inferior_axis: int = 1
) -> int | None:
    """The lowest of ``verts`` (top-down) whose body centre lies above the end of the cord.

    The cord runs down from its largest connected piece; a piece that starts less than half a
    vertebra below the end so far continues it (the model breaks the thin conus off, seen
    with the demo model), a speck further down does not. None without a cord, or when the
    cord ends above the first body centre or below the last.
    """
    comps, n = ndimage.label(semantic == Semantic.CORD, structure=_FULL)
    body = np.isin(semantic, (Semantic.CORPUS, Semantic.CORPUS_BORDER))
    centres = box_centroids(np.where(body, instance, 0), verts)
    if n == 0 or len(centres) < 2:
        return None
    rows = sorted(c[inferior_axis] for c in centres.values())
    gap = 0.5 * float(np.median(np.diff(rows)))
    spans = [
        (b[inferior_axis].start, b[inferior_axis].stop - 1) for b in ndimage.find_objects(comps)
    ]
    main = int(np.argmax(np.bincount(comps.ravel())[1:]))
    end = spans[main][1]
    for top, bottom in sorted(spans):
        if top > spans[main][0] and top <= end + gap:
            end = max(end, bottom)
    above = [v for v in centres if centres[v][inferior_axis] < end]
    if not above or len(above) == len(centres):
        return None
    return max(above, key=lambda v: centres[v][inferior_axis])


def _zip(verts: list[int], ids: list[int]) -> dict[int, int]:
    if len(verts) > len(ids):
        logger.warning(
            "%d vertebrae but only %d anatomical ids; extra ones dropped", len(verts), len(ids)
        )
    return {v: i for v, i in zip(verts, ids, strict=False)}


def _above_sacrum(
    instance: np.ndarray, semantic: np.ndarray, bottom: int, s: LabelingSettings
) -> bool:
    """Sacrum present (big enough) and the lowest vertebra sits above its centre."""
    sac = semantic == Semantic.SACRUM
    if int(sac.sum()) < s.min_sacrum_size:
        return False
    sac_c = box_centroids(sac.astype(np.uint8))[1][s.inferior_axis]
    bot_c = box_centroids(instance, [bottom])[bottom][s.inferior_axis]
    return bool(bot_c < sac_c)


def relabel(instance: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Apply a vertebra id mapping to vertebrae, their IVDs (100+X) and endplates (200+X).

    Ids not in ``mapping`` become 0; run it before `postprocess.add_sacrum`, so a merge id that
    happens to be 26 is never mistaken for S1.

    Examples
    --------
    >>> relabel(np.array([[[1, 2, 101, 202, 3]]], np.uint16), {1: 20, 2: 21}).tolist()
    [[[20, 21, 120, 221, 0]]]
    """
    lut = np.zeros(max(int(instance.max(initial=0)) + 1, ENDPLATE_OFFSET + IVD_OFFSET), np.uint16)
    for src, dst in mapping.items():
        for off in (0, IVD_OFFSET, ENDPLATE_OFFSET):
            lut[src + off] = dst + off
    return lut[instance.astype(np.intp, copy=False)]
