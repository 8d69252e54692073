"""Average symmetric surface distance (ASSD, mm), computed inside the masks' bounding box.

Surfaces and distances follow panoptica / medpy: the surface of a mask is the mask minus its
erosion by the 6-connected cross (voxels on the array edge count as surface); the ASSD is the mean
of the two directed mean distances from each surface voxel to the nearest surface voxel of the
other mask, in mm (``distance_transform_edt(..., sampling=spacing)``).

Everything is computed on the union bounding box of the two masks padded by one voxel (clipped at
the array edge, where the full-volume erosion also sees background), which gives the full-volume
answer exactly: the erosion only looks one voxel out and every surface voxel lies in the box. So
a small structure in a large volume costs little (issue 6).

Empty-mask convention (panoptica's ``EdgeCaseHandler`` for ASSD): both empty -> NaN, exactly one
empty -> ``inf`` (no surface to measure to; means over subjects then show it instead of hiding it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

Box = tuple[slice, ...]


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(
    pred_mask: np.ndarray, ref_mask: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (mm): pred surface -> ref surface, and ref -> pred.

    Both masks must be non-empty; the arrays are whatever crop the caller passes (see
    :func:`assd` for the bounding-box crop).
    """
    pred_surf, ref_surf = _surface(pred_mask), _surface(ref_mask)
    sampling = np.asarray(spacing, dtype=np.float64)
    to_ref = ndimage.distance_transform_edt(~ref_surf, sampling=sampling)[pred_surf]
    to_pred = ndimage.distance_transform_edt(~pred_surf, sampling=sampling)[ref_surf]
    return to_ref, to_pred


def _assd_of_crop(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    has_pred, has_ref = bool(pred.any()), bool(ref.any())
    if not has_pred and not has_ref:
        return float("nan")
    if not (has_pred and has_ref):
        return float("inf")
    to_ref, to_pred = surface_distances(pred, ref, spacing)
    return float((to_ref.mean() + to_pred.mean()) / 2.0)


def union_box(boxes: Sequence[Box | None], shape: Sequence[int], *, pad: int = 1) -> Box | None:
    """Smallest box holding every given box, grown by ``pad`` voxels and clipped to ``shape``.

    ``None`` entries (labels absent from a map, as ``find_objects`` returns them) are skipped;
    returns ``None`` when all are.
    """
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    return tuple(
        slice(
            max(min(b[ax].start for b in present) - pad, 0),
            min(max(b[ax].stop for b in present) + pad, shape[ax]),
        )
        for ax in range(len(shape))
    )


def _bbox(mask: np.ndarray) -> Box | None:
    found = ndimage.find_objects(mask.astype(np.uint8))
    return found[0] if found else None


def assd(pred_mask: np.ndarray, ref_mask: np.ndarray, spacing: Sequence[float]) -> float:
    """ASSD in mm between two boolean masks of one shape, ``spacing`` in mm per array axis.

    Returns NaN when both masks are empty and ``inf`` when only one is (module docstring).
    """
    pred, ref = np.asarray(pred_mask, bool), np.asarray(ref_mask, bool)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference {ref.shape}")
    _check_spacing(spacing, pred.ndim)
    box = union_box([_bbox(pred), _bbox(ref)], pred.shape)
    if box is None:
        return float("nan")
    return _assd_of_crop(pred[box], ref[box], spacing)


def assd_per_label(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    *,
    labels: Sequence[int] | None = None,
) -> dict[int, float]:
    """ASSD (mm) of every label of two integer label maps, each in its own bounding box.

    One ``find_objects`` pass per map gives every label's box, so the cost is one pass over the
    volume plus the labels' boxes, not one full-volume pass per label. ``labels`` defaults to all
    non-zero labels present in either map.
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference {ref.shape}")
    _check_spacing(spacing, pred.ndim)
    pred_boxes = ndimage.find_objects(_as_labels(pred))
    ref_boxes = ndimage.find_objects(_as_labels(ref))
    if labels is None:
        present = {i + 1 for i, b in enumerate(pred_boxes) if b is not None}
        present |= {i + 1 for i, b in enumerate(ref_boxes) if b is not None}
        labels = sorted(present)
    out: dict[int, float] = {}
    for lab in labels:
        boxes = [
            found[lab - 1] if 0 < lab <= len(found) else None for found in (pred_boxes, ref_boxes)
        ]
        box = union_box(boxes, pred.shape)
        if box is None:
            out[int(lab)] = float("nan")
            continue
        out[int(lab)] = _assd_of_crop(pred[box] == lab, ref[box] == lab, spacing)
    return out


def _check_spacing(spacing: Sequence[float], ndim: int) -> None:
    if len(spacing) != ndim or any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise ValueError(
            f"spacing {tuple(spacing)!r} must give one positive voxel size (mm) per array axis "
            f"({ndim} axes)"
        )


def _as_labels(arr: np.ndarray) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"label maps must hold integers, got dtype {arr.dtype}")
    return arr
