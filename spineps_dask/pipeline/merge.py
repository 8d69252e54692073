"""Merge per-cutout instance predictions into one vertebra instance mask, ordered by agreement.

Each cutout prediction (classes 0 background, 1 vertebra above, 2 centre, 3 below, in the
cutout's frame) proposes up to three vertebra masks. The same vertebra is proposed by up to three
neighbouring cutouts; SPINEPS (paper section 2.3, reference doc "Merge") groups proposals whose
Dice exceeds 0.3 and finalises the best-agreeing groups first, so the least consistent
predictions only fill what is left.

Everything works on bounding boxes: a proposal is its box origin plus a boolean crop, so the cost
grows with the number of cutouts, not the volume size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spineps_dask.pipeline._measure import box_centroids
from spineps_dask.pipeline.cutouts import Cutout

logger = logging.getLogger(__name__)

ABOVE, CENTRE, BELOW = 1, 2, 3


@dataclass(frozen=True)
class MergeSettings:
    """Merge constants (reference doc "Merge"; ``vert_size_threshold`` from the model config).

    A voxel joins a vertebra when the fraction of proposals voting for it exceeds
    ``vote_base + vote_step * (4 - n_proposals)`` (n capped at 4, so the threshold never drops
    under ``vote_base``).
    """

    neighbour_range: int = 2
    couple_dice: float = 0.3
    vote_base: float = 0.3
    vote_step: float = 0.15
    max_overlap: float = 0.6
    vert_size_threshold: int = 250
    inferior_axis: int = 1


@dataclass(frozen=True, eq=False)
class CutoutPrediction:
    """The instance model's answer for one cutout.

    ``classes``: shape = cutout shape, uint8 in {0, 1, 2, 3}; ``origin``: volume index of
    ``classes[0, 0, 0]``; ``index``: the cutout's rank bottom -> top (`Cutout.index`).
    """

    index: int
    origin: tuple[int, int, int]
    classes: np.ndarray

    @classmethod
    def from_cutout(cls, cutout: Cutout, classes: np.ndarray) -> CutoutPrediction:
        """Attach a model output to the cutout it was predicted from."""
        if classes.shape != cutout.array.shape:
            raise ValueError(f"prediction shape {classes.shape} != cutout {cutout.array.shape}")
        return cls(cutout.index, cutout.origin, classes)


@dataclass(frozen=True, eq=False)
class _Proposal:
    cutout: int
    kind: int
    lo: tuple[int, int, int]
    mask: np.ndarray

    @property
    def key(self) -> tuple[int, int]:
        return (self.cutout, self.kind)

    @property
    def hi(self) -> tuple[int, ...]:
        return tuple(a + s for a, s in zip(self.lo, self.mask.shape, strict=True))


def _proposals(pred: CutoutPrediction, shape: Sequence[int]) -> list[_Proposal]:
    """Up to three boxed masks (above, centre, below) in volume coordinates, clipped to it."""
    out = []
    classes = np.asarray(pred.classes)
    for kind, box in enumerate(ndimage.find_objects(classes, max_label=3), start=1):
        if box is None:
            continue
        lo = [max(b.start + o, 0) for b, o in zip(box, pred.origin, strict=True)]
        hi = [min(b.stop + o, n) for b, o, n in zip(box, pred.origin, shape, strict=True)]
        if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
            continue
        crop = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, pred.origin, strict=True))
        mask = classes[crop] == kind
        if mask.any():
            out.append(_Proposal(pred.index, kind, tuple(lo), mask))  # type: ignore[arg-type]
    return out


def _dice(a: _Proposal, b: _Proposal) -> float:
    lo = np.maximum(a.lo, b.lo)
    hi = np.minimum(a.hi, b.hi)
    if (hi <= lo).any():
        return 0.0
    sa = tuple(slice(x - o, y - o) for x, y, o in zip(lo, hi, a.lo, strict=True))
    sb = tuple(slice(x - o, y - o) for x, y, o in zip(lo, hi, b.lo, strict=True))
    inter = int(np.count_nonzero(a.mask[sa] & b.mask[sb]))
    return 2.0 * inter / (int(a.mask.sum()) + int(b.mask.sum()))


def _candidates(props: list[_Proposal], s: MergeSettings) -> list[tuple[float, list[_Proposal]]]:
    """Each proposal with its best partner per neighbouring cutout, scored by agreement.

    Score = (number of agreeing partners + 1) x mean partner Dice (0 for a lone proposal).
    Groups found from several seeds are kept once, with their best score.
    """
    by_cutout: dict[int, list[_Proposal]] = {}
    for p in props:
        by_cutout.setdefault(p.cutout, []).append(p)
    cache: dict[tuple[tuple[int, int], tuple[int, int]], float] = {}

    def dice(a: _Proposal, b: _Proposal) -> float:
        k = (min(a.key, b.key), max(a.key, b.key))
        if k not in cache:
            cache[k] = _dice(a, b)
        return cache[k]

    groups: dict[tuple[tuple[int, int], ...], tuple[float, list[_Proposal]]] = {}
    for seed in props:
        members, scores = [seed], []
        for c in range(seed.cutout - s.neighbour_range, seed.cutout + s.neighbour_range + 1):
            if c == seed.cutout or c not in by_cutout:
                continue
            best = max(by_cutout[c], key=lambda q: (dice(seed, q), -q.kind))
            d = dice(seed, best)
            if d > s.couple_dice:
                members.append(best)
                scores.append(d)
        score = (len(scores) + 1) * float(np.mean(scores)) if scores else 0.0
        key = tuple(sorted(m.key for m in members))
        if key not in groups or score > groups[key][0]:
            groups[key] = (score, members)
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [v for _, v in ranked]


def _vote(members: list[_Proposal], s: MergeSettings) -> tuple[tuple[slice, ...], np.ndarray]:
    """Voxels where more than the threshold fraction of the members vote, in their union box."""
    lo = np.min([m.lo for m in members], axis=0)
    hi = np.max([m.hi for m in members], axis=0)
    votes = np.zeros(tuple(hi - lo), dtype=np.uint8)
    for m in members:
        votes[tuple(slice(a - b, c - b) for a, b, c in zip(m.lo, lo, m.hi, strict=True))] += m.mask
    n = len(members)
    threshold = s.vote_base + s.vote_step * (4 - min(n, 4))
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), votes > threshold * n


def merge_predictions(
    predictions: Iterable[CutoutPrediction],
    shape: Sequence[int],
    *,
    settings: MergeSettings | None = None,
) -> np.ndarray:
    """Combine cutout predictions into a vertebra instance mask.

    Parameters
    ----------
    predictions : CutoutPrediction, any order (sorted by ``index`` here, so the result does not
        depend on the order in which distributed tasks finish)
    shape : shape (P, I, R) of the volume the cutouts were taken from
    settings : MergeSettings, optional

    Returns
    -------
    ndarray, ``shape``, uint16
        0 background, vertebrae numbered 1..N from top (smallest inferior index) to bottom.

    Examples
    --------
    Three cutouts each proposing (above, centre, below) of three stacked blocks give exactly
    three vertebrae 1, 2, 3 top to bottom (see tests/pipeline/test_merge.py).
    """
    s = settings or MergeSettings()
    preds = sorted(predictions, key=lambda p: p.index)
    indices = [p.index for p in preds]
    if len(set(indices)) != len(indices):
        raise ValueError(f"cutout indices must be unique, got {indices}")
    props = [q for p in preds for q in _proposals(p, shape)]
    claimed = np.zeros(tuple(shape), dtype=np.uint16)
    next_id = 1
    for score, members in _candidates(props, s):
        box, keep = _vote(members, s)
        total = int(keep.sum())
        if total == 0:
            continue
        region = claimed[box]
        overlap = int(np.count_nonzero(region[keep])) / total
        if overlap > s.max_overlap:
            continue
        region[keep & (region == 0)] = next_id
        logger.debug("vertebra %d from %s (score %.2f)", next_id, [m.key for m in members], score)
        next_id += 1
    return _renumber_top_down(claimed, s)


def _renumber_top_down(claimed: np.ndarray, s: MergeSettings) -> np.ndarray:
    """Drop vertebrae under the size threshold, renumber 1..N by inferior centre of mass."""
    counts = np.bincount(claimed.ravel())
    ids = np.flatnonzero(counts)
    ids = ids[ids > 0]
    out = np.zeros_like(claimed)
    if len(ids) == 0:
        return out
    big = ids[counts[ids] >= s.vert_size_threshold]
    if len(big) < len(ids):
        logger.info(
            "dropped %d vertebrae under %d voxels", len(ids) - len(big), s.vert_size_threshold
        )
    if len(big) == 0:
        return out
    cents = box_centroids(claimed, [int(i) for i in big])
    order = sorted(cents, key=lambda k: (cents[k][s.inferior_axis], k))
    lut = np.zeros(int(claimed.max()) + 1, dtype=np.uint16)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.uint16)
    return lut[claimed]
