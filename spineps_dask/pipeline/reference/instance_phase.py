"""The instance phase of `spineps` 2.1.3, for its reference mode (issue 22).

The reference's instance phase (``phase_instance.predict_instance_mask``) differs from the
paper's description that `cutouts` and `merge` follow: body centres come from the corpus eroded
by 2 voxels (18-connected), cleaned of 6-connected pieces under the model's
``corpus_size_cleaning``, with body/disc alternation checked along the spine; a centre that
falls outside the mask is moved 5 voxels down until it hits it, then truncated to whole voxels;
each cutout's three answers are coupled with their best neighbours (Dice > 0.3) and a couple's
voxels are those voted for by one proposal (two when three or more agree well); vertebrae under
``vert_size_threshold`` voxels (6-connected pieces) go, holes are filled, and ids run 1..N in
merge order. All arrays are on the instance grid in P-I-R (axis 1 points inferior).

Not reproduced: the reference's split of a merged vertebral body along a plane (when a body is
1.5 times its neighbours' mean volume and bodies and discs do not alternate); such a body keeps
one centre here, and `plan` logs it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spineps_dask.errors import InputError
from spineps_dask.labels import Semantic
from spineps_dask.pipeline.cutouts import map_labels
from spineps_dask.pipeline.merge import CutoutPrediction
from spineps_dask.pipeline.resolution import REFERENCE_VOXEL_MM3, REFERENCE_ZOOM, mm3_to_voxels
from spineps_dask.pipeline.semantic_cleaning import FillHoles

logger = logging.getLogger(__name__)

_FACES = ndimage.generate_binary_structure(3, 1)
_EDGES = ndimage.generate_binary_structure(3, 2)
_FULL = ndimage.generate_binary_structure(3, 3)
#: spineps ``phase_instance`` constants (mm, or reference voxels).
CROP_MARGIN_MM = 5 * min(REFERENCE_ZOOM)
SAME_HEIGHT_MM = 10 * REFERENCE_ZOOM[1]
MIN_CLEANING_MM3 = 40 * REFERENCE_VOXEL_MM3
COUPLE_DICE = 0.3
MAX_ESTABLISHED_OVERLAP = 0.6
CENTRE_STEP = 5


@dataclass(frozen=True)
class ReferenceSizes:
    """Voxel thresholds on the instance grid, as ``predict_instance_mask`` derives them from the
    instance folder's config (whose values the reference multiplies by the model's voxel
    volume when it reads the config, then divides by the grid's voxel volume here)."""

    corpus: int
    vertebra: int

    @classmethod
    def from_config(
        cls,
        corpus_size_cleaning: float,
        vert_size_threshold: float,
        *,
        resolution: Sequence[float],
        zoom: Sequence[float],
    ) -> ReferenceSizes:
        """``resolution``: the instance folder's ``resolution_range``; ``zoom``: the grid's."""
        scale = float(np.prod(resolution)) / float(np.prod(zoom))
        floor = mm3_to_voxels(MIN_CLEANING_MM3, zoom)
        return cls(
            corpus=max(int(corpus_size_cleaning * scale), floor),
            vertebra=max(int(vert_size_threshold * scale), floor),
        )


def remove_small_pieces(labels: np.ndarray, minimum: int, ids: Sequence[int]) -> np.ndarray:
    """6-connected pieces of ``ids`` under ``minimum`` voxels set to 0 (the reference's
    ``clean_cc_artifacts(only_delete=True)``)."""
    out = labels.copy()
    for i in ids:
        comps, n = ndimage.label(labels == i, structure=_FACES)
        if n == 0:
            continue
        small = np.flatnonzero(np.bincount(comps.ravel()) < minimum)
        small = small[small > 0]
        if len(small):
            out[np.isin(comps, small)] = 0
    return out


def corpus_centres(semantic: np.ndarray, *, corpus_size: int, zoom: Sequence[float]) -> list:
    """Vertebral-body centres (float voxel coordinates), bottom to top (``get_corpus_coms``)."""
    body = ndimage.binary_erosion(
        semantic == Semantic.CORPUS, structure=_EDGES, iterations=2, border_value=0
    ).astype(np.uint8)
    if body.any() and corpus_size > 0:
        body = remove_small_pieces(body, corpus_size, [1])
    if not body.any():
        return []
    bodies, n_bodies = ndimage.label(body, structure=_FULL)
    discs_mask = np.isin(semantic, (Semantic.DISC, Semantic.ENDPLATE))
    discs, n_discs = ndimage.label(discs_mask, structure=_FULL)
    heights: dict[tuple[str, int], float] = {}
    for k, c in _centres(bodies, n_bodies).items():
        heights[("body", k)] = c[1]
    for k, c in _centres(discs, n_discs).items():
        heights[("disc", k)] = c[1]
    _check_alternation(heights, has_discs=n_discs > 0, zoom=zoom)
    centres = sorted(_centres(bodies, n_bodies).values(), key=lambda c: c[1])
    return centres[::-1]


def _centres(comps: np.ndarray, n: int) -> dict[int, tuple[float, ...]]:
    if n == 0:
        return {}
    found = ndimage.center_of_mass(np.ones(comps.shape), comps, range(1, n + 1))
    return {k: tuple(float(v) for v in c) for k, c in zip(range(1, n + 1), found, strict=True)}


def _check_alternation(
    heights: dict[tuple[str, int], float], *, has_discs: bool, zoom: Sequence[float]
) -> None:
    """Bodies and discs should alternate along the spine; log where they do not (the reference
    then drops a same-height duplicate or splits an outsized body; only reported here)."""
    if not has_discs:
        return
    ordered = sorted(heights.items(), key=lambda kv: kv[1])
    same = SAME_HEIGHT_MM / float(zoom[1])
    for (a, ha), (b, hb) in itertools.pairwise(ordered):
        if a[0] == b[0]:
            what = "same height" if abs(hb - ha) < same else "merged bodies?"
            logger.info("reference mode: two %ss in a row at %.0f / %.0f (%s)", a[0], ha, hb, what)


def cutout_centres(mapped: np.ndarray, centres: Sequence[Sequence[float]]) -> np.ndarray:
    """Whole-voxel cutout centres: a centre outside the mask moves 5 voxels down until it is
    inside (back where it was if it leaves the grid), then each coordinate is truncated, as
    ``collect_vertebra_predictions`` does."""
    out = []
    for c in centres:
        c = tuple(float(v) for v in c)
        moved = c
        while mapped[int(moved[0]), int(moved[1]), int(moved[2])] == 0:
            moved = (moved[0], moved[1] + CENTRE_STEP, moved[2])
            if moved[1] >= mapped.shape[1]:
                moved = c
                break
        out.append([int(v) for v in moved])
    return np.asarray(out, dtype=int).reshape(-1, 3)


def foreground_crop(semantic: np.ndarray, zoom: Sequence[float]) -> tuple[slice, ...]:
    """The reference's crop before the instance phase: the mask's box grown by
    ``int(3.75 mm / finest zoom)`` voxels."""
    margin = int(CROP_MARGIN_MM / float(min(zoom)))
    boxes = ndimage.find_objects((semantic > 0).astype(np.uint8))
    if not boxes or boxes[0] is None:
        return tuple(slice(0, n) for n in semantic.shape)
    return tuple(
        slice(max(b.start - margin, 0), min(b.stop + margin, n))
        for b, n in zip(boxes[0], semantic.shape, strict=True)
    )


def plan(
    semantic: np.ndarray,
    *,
    mapping: Mapping[int, int],
    sizes: ReferenceSizes,
    zoom: Sequence[float],
) -> np.ndarray:
    """Cutout centres (N, 3) int, bottom to top, in the coordinates of ``semantic``."""
    crop = foreground_crop(semantic, zoom)
    inner = semantic[crop]
    centres = corpus_centres(inner, corpus_size=sizes.corpus, zoom=zoom)
    if not centres:
        raise InputError(
            f"no vertebral body is left after the reference's corpus cleaning (eroded bodies "
            f"under {sizes.corpus} voxels go); spineps 2.1.3 stops here too",
            step="cutouts",
        )
    # The cutout's own labels decide whether a centre is "inside": the sacrum maps to 0 there.
    moved = cutout_centres(map_labels(inner, dict(mapping)), centres)
    return moved + np.array([s.start for s in crop])


@dataclass(frozen=True, eq=False)
class _Proposal:
    """One cutout's answer for one of its three vertebrae, inside the grid."""

    lo: tuple[int, ...]
    mask: np.ndarray

    @property
    def size(self) -> int:
        return int(np.count_nonzero(self.mask))


def _proposals(
    predictions: Sequence[CutoutPrediction], shape: Sequence[int]
) -> dict[tuple[int, int], _Proposal]:
    out = {}
    for rank, pred in enumerate(predictions):
        lo = [max(o, 0) for o in pred.origin]
        hi = [min(o + s, n) for o, s, n in zip(pred.origin, pred.classes.shape, shape, strict=True)]
        inside = pred.classes[
            tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, pred.origin, strict=True))
        ]
        for value in np.unique(inside):
            if value == 0:
                continue
            out[(rank, int(value) - 1)] = _Proposal(tuple(lo), inside == value)
    return out


def _dice(a: _Proposal, b: _Proposal) -> float:
    total = a.size + b.size
    if total == 0:
        return 1.0
    lo = [max(x, y) for x, y in zip(a.lo, b.lo, strict=True)]
    hi = [
        min(x + s, y + t) for x, s, y, t in zip(a.lo, a.mask.shape, b.lo, b.mask.shape, strict=True)
    ]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return 0.0
    sa = tuple(slice(p - x, q - x) for p, q, x in zip(lo, hi, a.lo, strict=True))
    sb = tuple(slice(p - x, q - x) for p, q, x in zip(lo, hi, b.lo, strict=True))
    return 2.0 * int(np.count_nonzero(a.mask[sa] & b.mask[sb])) / total


def _couples(props: dict[tuple[int, int], _Proposal], n: int) -> list[tuple[tuple, float]]:
    """``create_prediction_couples``: each proposal with up to two partners from cutouts at
    most two away (Dice > 0.3, partners overlapping each other too), ranked by
    (members + 1) x mean agreement."""
    found: dict[tuple, list[float]] = {}
    for idx in range(n):
        for kind in range(3):
            if (idx, kind) not in props:
                continue
            anchor = props[(idx, kind)]
            cands = [
                (i, k)
                for i in range(max(0, idx - 2), min(idx + 2, n) + 1)
                for k in range(3)
                if i != idx and (i, k) in props
            ]
            dices = {c: _dice(anchor, props[c]) for c in cands}
            best = sorted(dices, key=lambda c: dices[c], reverse=True)[:2]
            couple = [c for c in best if dices[c] > COUPLE_DICE]
            if len(couple) == 2 and _dice(props[couple[0]], props[couple[1]]) < COUPLE_DICE:
                couple = couple[:1]
            agreement = sum(dices[c] for c in couple) / len(couple) if couple else 0.0
            key = tuple(sorted([*couple, (idx, kind)], key=lambda x: x[0]))
            found.setdefault(key, []).append(agreement)
    ranked = [(k, sum(v) / len(v)) for k, v in found.items()]
    return sorted(ranked, key=lambda kv: (len(kv[0]) + 1) * kv[1], reverse=True)


def merge(
    predictions: Sequence[CutoutPrediction], shape: Sequence[int], *, vertebra_size: int
) -> np.ndarray:
    """The reference's merge of the cutout answers into vertebrae 1..N (uint16), in merge order
    (``merge_coupled_predictions`` + hole filling + consecutive ids)."""
    props = _proposals(predictions, shape)
    out = np.zeros(tuple(shape), dtype=np.uint16)
    next_id = 1
    for members, agreement in _couples(props, len(predictions)):
        loose = len(members) <= 2 or agreement < 0.3 + 0.15 * (4 - len(members))
        parts = [props[m] for m in members]
        lo = [min(p.lo[a] for p in parts) for a in range(3)]
        hi = [max(p.lo[a] + p.mask.shape[a] for p in parts) for a in range(3)]
        votes = np.zeros([h - lo_ for lo_, h in zip(lo, hi, strict=True)], dtype=np.uint8)
        for p in parts:
            votes[
                tuple(
                    slice(x - o, x - o + s) for x, o, s in zip(p.lo, lo, p.mask.shape, strict=True)
                )
            ] += p.mask
        chosen = votes >= (1 if loose else 2)
        count = int(np.count_nonzero(chosen))
        if count == 0:
            raise InputError("an empty vertebra in the merge; spineps 2.1.3 stops here too")
        window = out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        free = chosen & (window == 0)
        if (count - int(np.count_nonzero(free))) / count > MAX_ESTABLISHED_OVERLAP:
            continue
        window[free] = next_id
        next_id += 1
    ids = [int(i) for i in np.unique(out) if i]
    out = remove_small_pieces(out, vertebra_size, ids)
    present = [int(i) for i in np.unique(out) if i]
    out = FillHoles(tuple(present))(out)
    lut = np.zeros(int(out.max()) + 1, dtype=np.uint16)
    for new, old in enumerate(present, start=1):
        lut[old] = new
    return lut[out]
