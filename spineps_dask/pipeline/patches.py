"""Per-vertebra image patches for the labelling classifier (VERIDAH, `spineps` 2.x).

What the reference feeds its labelling model (``shared/docs/spineps-reference.md``,
"Published weights and the labelling phase"; `spineps` ``lab_model.py``): the scan in the
model's orientation, cropped around the vertebrae and rescaled to the model's resolution (cubic
spline for the image, nearest neighbour for the mask); per vertebra, a window centred on the
middle of its vertebral body's bounding box, optionally turned in the sagittal plane so that
the spine axis (through the bodies above and below) points straight down, then z-scored over
its non-zero voxels. Only the image goes into the network.

Arrays here are plain NumPy; `Volume` carries the geometry. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from nibabel import orientations as nio
from scipy import ndimage

from spineps_dask.geometry import Volume, rescale
from spineps_dask.labels import IVD_OFFSET, VERTEBRA_IDS
from spineps_dask.pipeline.cutouts import crop_padded

#: Body labels a patch is centred on: corpus, corpus border, dens (reference: ``Location``).
BODY_LABELS: tuple[int, ...] = (49, 50, 51)
#: Margin (mm) kept around the vertebrae before rescaling (reference ``LABELING_CROP_MARGIN_MM``).
CROP_MARGIN_MM = 128.0
#: Extra voxels cut on the two sagittal axes so a turned window has no empty corners
#: (reference: 64, half on each side).
ROTATION_PAD = 64
#: The orientation the reference turns patches in: axis 0 inferior, axis 1 posterior.
_IPL = ("I", "P", "L")
_S1 = VERTEBRA_IDS["S1"]


@dataclass(frozen=True)
class PatchSettings:
    """How a labelling model wants its patches.

    ``orientation``/``spacing``: the model's ``model_expected_orientation`` and
    ``resolution_range``; ``size``: the patch (the reference's ``final_size``) along those
    axes; ``rotate``: turn each patch to the spine axis (models trained on turned patches).
    """

    orientation: tuple[str, str, str] = ("P", "I", "R")
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    size: tuple[int, int, int] = (32, 64, 32)
    rotate: bool = True


@dataclass(frozen=True)
class VertebraPatches:
    """The classifier's input for one subject.

    ``ids``: vertebra ids of the instance mask, top to bottom; ``patches``: ``(N, X, Y, Z)``
    float32 along `PatchSettings.orientation`; ``angles``: the sagittal turn of each (degrees).
    """

    ids: tuple[int, ...]
    patches: np.ndarray
    angles: tuple[float, ...]


def vertebra_ids(instance: np.ndarray) -> list[int]:
    """Vertebra ids present (1..99 without the sacrum, 26), ascending.

    Examples
    --------
    >>> vertebra_ids(np.array([[[0, 20, 26, 120, 221, 3]]]))
    [3, 20]
    """
    present = np.flatnonzero(np.bincount(np.asarray(instance).ravel().astype(np.intp)))
    return [int(i) for i in present if 0 < i < IVD_OFFSET and i != _S1]


def vertebra_patches(
    image: Volume,
    instance: Volume,
    semantic: Volume | None = None,
    *,
    settings: PatchSettings | None = None,
) -> VertebraPatches:
    """Cut one patch per vertebra of ``instance`` out of ``image`` (same grid).

    Parameters
    ----------
    image
        The scan (any orientation, any intensity scale).
    instance
        Instance mask on the image's grid; vertebrae are ids 1..99 except 26.
    semantic
        Semantic mask on the same grid; when given, each patch centres on the vertebra's body
        (`BODY_LABELS`), as the reference does; a vertebra without body voxels (C1) centres on
        its whole mask.
    settings
        The model's patch geometry.

    Returns
    -------
    VertebraPatches
        Empty (``N = 0``) when the mask holds no vertebra.
    """
    s = settings or PatchSettings()
    img = image.reorient(s.orientation)
    inst = np.asarray(instance.reorient(s.orientation).data)
    if inst.shape != img.shape:
        raise ValueError(f"instance grid {inst.shape} differs from the image grid {img.shape}")
    ids = vertebra_ids(inst)
    if not ids:
        return VertebraPatches((), np.zeros((0, *s.size), np.float32), ())
    body = inst
    if semantic is not None:
        sem = np.asarray(semantic.reorient(s.orientation).data)
        body = np.where(np.isin(sem, BODY_LABELS), inst, 0)
    box = _box(inst, ids, img.spacing)
    crop = Volume(np.asarray(img.data, dtype=np.float32)[box], _shifted(img.affine, box))
    model = rescale(crop, s.spacing, order=3)
    to_model = np.linalg.inv(model.affine) @ crop.affine
    centres, coms, has_body = _body_points(inst[box], body[box], ids, to_model)
    order = _top_down(coms, ids, s.orientation)
    ids = [ids[k] for k in order]
    centres, coms, has_body = centres[order], coms[order], has_body[order]
    angles = np.zeros(len(ids))
    if s.rotate and has_body.any():
        # The axis runs through bodies; a vertebra without one (C1's ring) takes the turn
        # of the nearest vertebra that has one.
        with_body = np.flatnonzero(has_body)
        turns = spine_angles(coms[with_body], s.orientation, s.spacing)
        nearest = np.abs(np.arange(len(ids))[:, None] - with_body[None, :]).argmin(axis=1)
        angles = turns[nearest]
    data = np.asarray(model.data, dtype=np.float32)
    patches = np.stack(
        [_patch(data, c, a, s) for c, a in zip(centres, angles, strict=True)]
    ).astype(np.float32)
    return VertebraPatches(tuple(ids), patches, tuple(float(a) for a in angles))


def _box(inst: np.ndarray, ids: Sequence[int], spacing: Sequence[float]) -> tuple[slice, ...]:
    """The vertebrae's bounding box grown by `CROP_MARGIN_MM` (clipped to the array)."""
    mask = np.isin(inst, ids)
    out = []
    for axis, n in enumerate(inst.shape):
        other = tuple(a for a in range(inst.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        pad = int(np.ceil(CROP_MARGIN_MM / spacing[axis]))
        out.append(slice(max(int(hit[0]) - pad, 0), min(int(hit[-1]) + 1 + pad, n)))
    return tuple(out)


def _shifted(affine: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    out = np.array(affine, dtype=float)
    out[:3, 3] = out[:3, :3] @ np.array([b.start for b in box], dtype=float) + out[:3, 3]
    return out


def _body_points(
    inst: np.ndarray, body: np.ndarray, ids: Sequence[int], to_model: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per id, on the model grid: the body's box centre (rounded), its centre of mass, and
    whether it has body voxels (else both come from the whole vertebra).

    Measured on the finer scan grid and mapped, so a thin vertebra cut by the view's edge,
    which the coarser model grid may lose, still gets a patch.
    """
    boxes_body = ndimage.find_objects(body.astype(np.intp, copy=False))
    boxes_all = ndimage.find_objects(inst.astype(np.intp, copy=False))
    centres, coms, flags = [], [], []
    for v in ids:
        has_body = v <= len(boxes_body) and boxes_body[v - 1] is not None
        arr, box = (body, boxes_body[v - 1]) if has_body else (inst, boxes_all[v - 1])
        assert box is not None  # every id in ``ids`` is present in ``inst``
        mid = [0.5 * (b.start + b.stop - 1) for b in box]
        idx = np.nonzero(arr[box] == v)
        com = [float(i.mean()) + b.start for i, b in zip(idx, box, strict=True)]
        centres.append(np.rint(_apply(to_model, mid)))
        coms.append(_apply(to_model, com))
        flags.append(has_body)
    return np.asarray(centres, dtype=int), np.asarray(coms, dtype=float), np.asarray(flags)


def _apply(affine: np.ndarray, point: Sequence[float]) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(point, dtype=float) + affine[:3, 3]


def _top_down(coms: np.ndarray, ids: Sequence[int], orientation: Sequence[str]) -> list[int]:
    axis = next(k for k, c in enumerate(orientation) if c in "IS")
    sign = 1.0 if orientation[axis] == "I" else -1.0
    return sorted(range(len(ids)), key=lambda k: (sign * coms[k][axis], ids[k]))


def _to_ipl(orientation: Sequence[str]) -> np.ndarray:
    return nio.ornt_transform(nio.axcodes2ornt(tuple(orientation)), nio.axcodes2ornt(_IPL))


def spine_angles(
    coms: np.ndarray, orientation: Sequence[str], spacing: Sequence[float]
) -> np.ndarray:
    """Sagittal tilt (degrees) of the spine axis at each vertebra, top to bottom.

    The axis at vertebra k runs from the body centre above it to the one below it (its own
    at either end), as the reference measures it in (I, P, L) voxels; the angle is the one
    between that axis and straight down, signed by the reference's rule (the sign of
    ``L - P`` of the axis). A lone vertebra gets 0 (the reference would divide by zero).

    Examples
    --------
    >>> coms = np.array([[0.0, 0, 0], [0, 10, 0], [0, 20, 0]])  # (P, I, R): straight down
    >>> spine_angles(coms, ("P", "I", "R"), (1.0, 1.0, 1.0)).tolist()
    [0.0, 0.0, 0.0]
    """
    n = len(coms)
    if n < 2:
        return np.zeros(n)
    ornt = _to_ipl(orientation)
    mm = np.asarray(coms, dtype=float) * np.asarray(spacing, dtype=float)
    ipl = np.zeros_like(mm)
    for src, (dst, flip) in enumerate(ornt):
        ipl[:, int(dst)] = mm[:, src] * flip
    out = np.zeros(n)
    for k in range(n):
        v = ipl[min(k + 1, n - 1)] - ipl[max(k - 1, 0)]
        norm = float(np.linalg.norm(v))
        theta = float(np.degrees(np.arccos(np.clip(v[0] / norm, -1.0, 1.0))))
        out[k] = theta if v[2] - v[1] >= 0 else -theta
    return out


def _patch(data: np.ndarray, centre: np.ndarray, angle: float, s: PatchSettings) -> np.ndarray:
    """One vertebra's window: cut (padded for turning), turned in (I, P), cropped, z-scored."""
    turn = s.rotate and angle != 0.0
    sagittal = [k for k, c in enumerate(s.orientation) if c in "IPSA"]
    cut = np.array(s.size)
    if turn:
        cut[sagittal] += ROTATION_PAD
    origin = tuple(int(v) for v in centre - cut // 2)
    window = np.asarray(crop_padded(data, origin, tuple(int(v) for v in cut)), dtype=np.float32)
    if turn:
        ornt = _to_ipl(s.orientation)
        ipl = nio.apply_orientation(window, ornt)
        ipl = ndimage.rotate(ipl, angle, axes=(1, 0), reshape=False, order=3, mode="constant")
        half = ROTATION_PAD // 2
        ipl = ipl[half:-half, half:-half, :]
        back = nio.ornt_transform(nio.axcodes2ornt(_IPL), nio.axcodes2ornt(tuple(s.orientation)))
        window = nio.apply_orientation(ipl, back)
    return normalize_nonzero(window)


def normalize_nonzero(patch: np.ndarray) -> np.ndarray:
    """Z-score the non-zero voxels (population SD); zeros (padding) stay zero.

    MONAI's ``NormalizeIntensity(nonzero=True)``, which the reference applies to each patch.

    Examples
    --------
    >>> normalize_nonzero(np.array([0.0, 1.0, 3.0])).tolist()
    [0.0, -1.0, 1.0]
    """
    out = np.zeros(patch.shape, dtype=np.float32)
    mask = patch != 0
    if not mask.any():
        return out
    vals = patch[mask].astype(np.float64)
    sd = float(vals.std())
    out[mask] = (vals - vals.mean()) / (sd if sd > 0 else 1.0)
    return out
