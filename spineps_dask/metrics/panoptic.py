"""Panoptic metrics: one-to-one instance matching at IoU >= 0.5, then RQ, SQ, PQ (Kirillov 2019).

Matching reproduces panoptica's default ``NaiveThresholdMatching`` (the paper computed its figures
with panoptica, Methods 2.6): every overlapping (reference, prediction) pair is scored by IoU,
pairs are taken greedily from the highest IoU down (ties: lower prediction label, then lower
reference label first) and a pair is accepted when neither side is matched yet and
``IoU >= threshold`` (the paper: "IoU greater than or equal to 0.5"; panoptica's
``strict_threshold=False``). Above 0.5 a match is unique anyway; at exactly 0.5 one prediction
can reach two references, and the greedy order decides.

Definitions and zero-match conventions follow panoptica 2.1:

- RQ = TP / (TP + FP/2 + FN/2); with TP = 0: 0.0, or NaN when both maps have no instances.
- SQ = mean IoU of the matched pairs; SQ-DSC and SQ-ASSD the mean Dice / ASSD (mm) of the
  matched pairs (the paper's "instance-wise" DSC / ASSD). With TP = 0: NaN when there are no
  instances at all, else 0.0 (IoU, Dice) or ``inf`` (ASSD).
- PQ = SQ x RQ (and PQ-DSC = SQ-DSC x RQ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spineps_dask.metrics.surface import _assd_of_crop, union_box

#: Paper, Methods 2.6: "Instances with an IoU greater than or equal to 0.5 were considered TP".
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class InstanceMatch:
    """One matched pair: reference and predicted label, their IoU, Dice and ASSD (mm)."""

    ref_label: int
    pred_label: int
    iou: float
    dice: float
    assd: float = float("nan")


@dataclass(frozen=True)
class PanopticResult:
    """Counts, matches and the derived RQ / SQ / PQ of one instance group in one subject."""

    n_ref: int
    n_pred: int
    matches: tuple[InstanceMatch, ...]

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_ref - self.tp

    @property
    def rq(self) -> float:
        if self.tp == 0:
            return 0.0 if self.n_ref + self.n_pred > 0 else float("nan")
        return self.tp / (self.tp + 0.5 * self.fp + 0.5 * self.fn)

    def _mean(self, field: str, zero_tp: float) -> float:
        if self.tp == 0:
            return zero_tp if self.n_ref + self.n_pred > 0 else float("nan")
        return float(np.mean([getattr(m, field) for m in self.matches]))

    @property
    def sq(self) -> float:
        return self._mean("iou", 0.0)

    @property
    def sq_dsc(self) -> float:
        return self._mean("dice", 0.0)

    @property
    def sq_assd(self) -> float:
        return self._mean("assd", float("inf"))

    @property
    def pq(self) -> float:
        return self.sq * self.rq

    @property
    def pq_dsc(self) -> float:
        return self.sq_dsc * self.rq


def overlap_table(pred: np.ndarray, ref: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Every overlapping pair as ``(ref_label, pred_label, intersection, ref_size, pred_size)``.

    One pass: the (pred, ref) label pair of every voxel where both are foreground is encoded in
    one integer and counted with ``np.unique``; sizes come from ``np.bincount``.
    """
    pred = np.asarray(pred, dtype=np.int64)
    ref = np.asarray(ref, dtype=np.int64)
    n_ref_labels = int(ref.max(initial=0)) + 1
    both = (pred > 0) & (ref > 0)
    codes, inter = np.unique(pred[both] * n_ref_labels + ref[both], return_counts=True)
    size_ref = np.bincount(ref.ravel())
    size_pred = np.bincount(pred.ravel())
    out = []
    for code, n in zip(codes.tolist(), inter.tolist(), strict=True):
        p, r = divmod(code, n_ref_labels)
        out.append((r, p, n, int(size_ref[r]), int(size_pred[p])))
    return out


def match_instances(
    pred: np.ndarray, ref: np.ndarray, *, threshold: float = IOU_THRESHOLD
) -> list[InstanceMatch]:
    """Greedy one-to-one matching by decreasing IoU, accepting ``IoU >= threshold``.

    Parameters
    ----------
    pred, ref
        Integer instance maps of one shape, 0 = background.

    Returns
    -------
    list of InstanceMatch
        Sorted by reference label; ``assd`` is left NaN (see :func:`panoptic_quality`).
    """
    scored = []
    for r, p, n, size_r, size_p in overlap_table(pred, ref):
        # Same float64 arithmetic as panoptica, so a pair exactly at the threshold agrees.
        iou = float(np.float64(n) / (np.float64(size_r) + np.float64(size_p) - np.float64(n)))
        scored.append((iou, p, r, 2.0 * n / (size_r + size_p)))
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    used_pred: set[int] = set()
    used_ref: set[int] = set()
    matches = []
    for iou, p, r, dsc in scored:
        if p in used_pred or r in used_ref or iou < threshold:
            continue
        used_pred.add(p)
        used_ref.add(r)
        matches.append(InstanceMatch(ref_label=r, pred_label=p, iou=iou, dice=dsc))
    return sorted(matches, key=lambda m: m.ref_label)


def restrict_labels(labelmap: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Copy of ``labelmap`` with every label outside ``labels`` set to background."""
    arr = np.asarray(labelmap)
    keep = np.asarray([lab for lab in labels if 0 < lab <= arr.max(initial=0)], dtype=np.int64)
    # A lookup table is one gather per voxel, cheaper than np.isin's sort on large volumes.
    lut = np.zeros(int(arr.max(initial=0)) + 1, dtype=arr.dtype)
    lut[keep] = keep
    return lut[arr]


def panoptic_quality(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    spacing: Sequence[float],
    labels: Sequence[int] | None = None,
    threshold: float = IOU_THRESHOLD,
    with_assd: bool = True,
) -> PanopticResult:
    """RQ / SQ / PQ and per-instance Dice / ASSD of one instance group.

    Parameters
    ----------
    pred, ref
        Integer instance maps of one shape ``(X, Y, Z)``, 0 = background.
    spacing
        Voxel size (mm) per array axis, for the ASSD.
    labels
        The group's instance labels (e.g. vertebrae 1-28); other labels are ignored in both maps.
        ``None`` scores every label.
    with_assd
        Compute each matched pair's ASSD in the pair's bounding box (the costly part).
    """
    if labels is not None:
        pred, ref = restrict_labels(pred, labels), restrict_labels(ref, labels)
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference {ref.shape}")
    matches = match_instances(pred, ref, threshold=threshold)
    if with_assd and matches:
        pred_boxes, ref_boxes = ndimage.find_objects(pred), ndimage.find_objects(ref)
        scored = []
        for m in matches:
            box = union_box([pred_boxes[m.pred_label - 1], ref_boxes[m.ref_label - 1]], pred.shape)
            dist = _assd_of_crop(pred[box] == m.pred_label, ref[box] == m.ref_label, spacing)
            scored.append(
                InstanceMatch(
                    ref_label=m.ref_label,
                    pred_label=m.pred_label,
                    iou=m.iou,
                    dice=m.dice,
                    assd=dist,
                )
            )
        matches = scored
    n_pred = int(np.count_nonzero(np.bincount(pred.ravel())[1:]))
    n_ref = int(np.count_nonzero(np.bincount(ref.ravel())[1:]))
    return PanopticResult(n_ref=n_ref, n_pred=n_pred, matches=tuple(matches))
