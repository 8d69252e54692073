"""Volume overlap: Dice and IoU of binary masks, and of every label of two label maps at once.

Empty-mask convention (the nnU-Net ``compute_metrics`` / panoptica ``EdgeCaseHandler`` one):
both masks empty -> NaN (nothing to score, and a 1.0 would inflate means over subjects that lack
a structure); exactly one empty -> 0.0.
"""

from __future__ import annotations

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def dice(pred_mask: np.ndarray, ref_mask: np.ndarray) -> float:
    """Dice similarity coefficient ``2|P∩R| / (|P| + |R|)`` of two boolean masks of one shape.

    Returns NaN when both masks are empty and 0.0 when only one is (see module docstring).
    """
    pred, ref = np.asarray(pred_mask, bool), np.asarray(ref_mask, bool)
    _check_shapes(pred, ref)
    inter = np.count_nonzero(pred & ref)
    return _ratio(2.0 * inter, np.count_nonzero(pred) + np.count_nonzero(ref))


def iou(pred_mask: np.ndarray, ref_mask: np.ndarray) -> float:
    """Intersection over union ``|P∩R| / |P∪R|``; NaN when both masks are empty."""
    pred, ref = np.asarray(pred_mask, bool), np.asarray(ref_mask, bool)
    _check_shapes(pred, ref)
    return _ratio(np.count_nonzero(pred & ref), np.count_nonzero(pred | ref))


def label_counts(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel counts per label of ``pred``, of ``ref`` and of their agreement, in one pass.

    Parameters
    ----------
    pred, ref
        Integer label maps of one shape (0 = background, labels >= 0).

    Returns
    -------
    (n_pred, n_ref, n_both)
        Arrays indexed by label (length ``max label + 1``): voxels with that label in ``pred``,
        in ``ref``, and in both at the same place.
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    _check_shapes(pred, ref)
    size = int(max(pred.max(initial=0), ref.max(initial=0))) + 1
    p, r = pred.ravel(), ref.ravel()
    n_pred = np.bincount(p, minlength=size)
    n_ref = np.bincount(r, minlength=size)
    n_both = np.bincount(p[p == r], minlength=size)
    return n_pred, n_ref, n_both


def dice_per_label(
    pred: np.ndarray, ref: np.ndarray, labels: list[int] | None = None
) -> dict[int, float]:
    """Dice of every label of two label maps from one bincount pass (not one pass per label).

    ``labels`` defaults to every non-zero label present in either map; a requested label absent
    from both gets NaN, present in one only gets 0.0.
    """
    n_pred, n_ref, n_both = label_counts(pred, ref)
    if labels is None:
        labels = [int(x) for x in np.flatnonzero((n_pred + n_ref)[1:]) + 1]
    out: dict[int, float] = {}
    for lab in labels:
        if lab >= len(n_pred):
            out[int(lab)] = float("nan")
            continue
        out[int(lab)] = _ratio(2.0 * n_both[lab], n_pred[lab] + n_ref[lab])
    return out


def _check_shapes(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction shape {pred.shape} differs from reference shape {ref.shape}; "
            "resample the prediction into the reference grid first"
        )
