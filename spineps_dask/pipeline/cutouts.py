"""Vertebral-body centres and the fixed-size cutouts the instance model sees.

SPINEPS (paper section 2.3, reference doc "Instance phase") finds one centre per vertebral body
in the semantic mask and crops a fixed-size window of the semantic labels around each; the
instance model then names, per cutout, the vertebra above, at and below the centre.

Orientation: every array here is in the instance space the caller prepared, P-I-R (axis 0 points
posterior, axis 1 inferior, axis 2 right). "Bottom" therefore means the largest axis-1 index.
Nothing is reoriented here; pass ``inferior_axis`` if a caller's space differs.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spineps_dask.labels import INSTANCE_INPUT_MAPPING, VERTEBRA_IDS, Semantic

logger = logging.getLogger(__name__)

_FULL = ndimage.generate_binary_structure(3, 3)

DEFAULT_MAPPING: Mapping[int, int] = INSTANCE_INPUT_MAPPING

#: Reference ``cutout_size`` (P, I, R) for the T2w instance model.
CUTOUT_SIZE: tuple[int, int, int] = (248, 304, 64)


@dataclass(frozen=True)
class CentreSettings:
    """How vertebral-body centres are found.

    ``erosion`` and ``corpus_size_cleaning`` are the reference constants. ``max_split_erosion``
    bounds the extra erosions tried to cut a merged body; ``min_seed_size`` is the smallest
    part (voxels, after that erosion) still counted as a body of its own. A body taller than
    ``elongation`` x the median body height is cut into stacked pieces (fusion without waist).
    ``body_labels``: the corpus (49) plus its cortical border (50) where a model emits it; the
    border alone is a thin shell that the 2-voxel erosion would wipe out (tptbox CT sample).
    """

    erosion: int = 2
    corpus_size_cleaning: int = 100
    max_split_erosion: int = 6
    min_seed_size: int = 20
    elongation: float = 1.6
    body_labels: tuple[int, ...] = (int(Semantic.CORPUS), int(Semantic.CORPUS_BORDER))
    inferior_axis: int = 1


@dataclass(frozen=True, eq=False)
class Cutout:
    """One cutout: a small, self-describing task payload.

    ``array`` has the cutout shape (P, I, R), dtype uint8, holding instance-model input ids.
    ``origin`` is the volume index of ``array[0, 0, 0]`` (may be negative at borders), so
    ``volume[origin + i] == array[i]`` wherever the volume exists. ``index`` is the rank of the
    centre counted bottom -> top (0 = lowest body).
    """

    subject: str
    index: int
    centre: tuple[int, int, int]
    origin: tuple[int, int, int]
    array: np.ndarray


def find_centres(semantic: np.ndarray, *, settings: CentreSettings | None = None) -> np.ndarray:
    """Centres of mass of the vertebral bodies, ordered bottom -> top.

    Parameters
    ----------
    semantic : ndarray, shape (P, I, R), int
        Semantic mask (label 49 = corpus, 50 = corpus border).
    settings : CentreSettings, optional

    Returns
    -------
    ndarray, shape (N, 3), float64
        One row per body, the lowest (largest inferior index) first.

    Examples
    --------
    Two bodies fused by a thick bridge still give two centres (see ``split_component``).
    """
    s = settings or CentreSettings()
    corpus = np.isin(semantic, s.body_labels)
    if s.erosion > 0:
        corpus = ndimage.binary_erosion(corpus, iterations=s.erosion)
    comps, _ = ndimage.label(corpus, structure=_FULL)
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (mask in its box, box origin)
    for i, box in enumerate(ndimage.find_objects(comps), start=1):
        if box is None:
            continue
        mask = comps[box] == i
        if int(mask.sum()) < s.corpus_size_cleaning:
            continue
        offset = np.array([sl.start for sl in box], dtype=float)
        parts += [(part, offset) for part in split_component(mask, settings=s)]
    parts = _split_elongated(parts, semantic.shape, s)
    centres = [np.array(ndimage.center_of_mass(m)) + off for m, off in parts]
    if not centres:
        logger.info("no vertebral body of >= %d voxels found", s.corpus_size_cleaning)
        return np.zeros((0, 3))
    out = np.stack(centres)
    # Bottom first: largest inferior coordinate first; ties broken by the other axes.
    order = np.lexsort((out[:, 2], out[:, 0], -out[:, s.inferior_axis]))
    return out[order]


def split_component(
    mask: np.ndarray, *, settings: CentreSettings | None = None
) -> list[np.ndarray]:
    """Split one body component that holds several fused bodies.

    Erode further, one voxel at a time, until the component falls apart into >= 2 parts of at
    least ``min_seed_size`` voxels; each part is a seed and every voxel of the original mask goes
    to its nearest seed (a distance-based watershed). A thin or thick bridge between two stacked
    bodies disappears long before either body does, while a single compact body only shrinks.
    Parts must lie one above the other (their centres differ most along the inferior axis), so
    a body with a notch is not cut sideways.

    Examples
    --------
    >>> m = np.zeros((9, 24, 9), bool); m[1:8, 1:10, 1:8] = m[1:8, 14:23, 1:8] = True
    >>> m[3:6, 10:14, 3:6] = True  # a 3-voxel-thick bridge
    >>> len(split_component(m))
    2
    """
    s = settings or CentreSettings()
    eroded = mask
    for _ in range(s.max_split_erosion):
        eroded = ndimage.binary_erosion(eroded, structure=_FULL)
        labels, n = ndimage.label(eroded, structure=_FULL)
        if n == 0:
            break
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.flatnonzero(sizes >= s.min_seed_size) + 1
        if len(keep) < 2:
            continue
        seeds_c = np.array(ndimage.center_of_mass(eroded, labels, keep))
        spread = seeds_c.max(axis=0) - seeds_c.min(axis=0)
        if spread[s.inferior_axis] < spread.max():
            continue
        seeds = np.where(np.isin(labels, keep), labels, 0)
        _, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
        owner = seeds[tuple(idx)]
        return [mask & (owner == k) for k in keep]
    return [mask]


def _height(mask: np.ndarray, axis: int) -> int:
    rows = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


def _split_elongated(
    parts: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, ...], s: CentreSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut bodies much taller than the median body into stacked pieces.

    Bodies fused over their full width (no waist for erosion to find) show up as a component
    ``k`` times as tall as the others; it is cut into ``k`` slabs along the inferior axis, each
    cut at the smallest cross-section near the evenly spaced position. Needs >= 3 bodies to
    know the typical height (the median of the <= 4 nearest other bodies, at least 2 of them,
    none cut by the top or bottom of the field of view).
    """
    ax = s.inferior_axis
    if len(parts) < 3:
        return parts
    # Heights are measured after the erosion; add it back so ratios compare real body heights.
    heights = np.array([_height(m, ax) + 2 * s.erosion for m, _ in parts])
    levels = np.array([ndimage.center_of_mass(m)[ax] + off[ax] for m, off in parts])
    whole = np.array(
        [off[ax] > s.erosion and off[ax] + m.shape[ax] < shape[ax] - s.erosion for m, off in parts]
    )
    # The top body in view may be C2, whose body label includes the dens (reference scheme):
    # about twice a cervical body's height, and never two vertebrae.
    top = int(np.argmin(levels))
    out = []
    for i, ((mask, off), h) in enumerate(zip(parts, heights, strict=True)):
        if i == top:
            out.append((mask, off))
            continue
        # Typical height from the nearest whole bodies only: cervical bodies are half as tall
        # as lumbar ones, so a spine-wide median would cut healthy lumbar bodies.
        others = np.flatnonzero(whole & (np.arange(len(parts)) != i))
        near = others[np.argsort(np.abs(levels[others] - levels[i]), kind="stable")[:4]]
        typical = float(np.median(heights[near])) if len(near) >= 2 else np.inf
        k = round(h / typical) if h > s.elongation * typical else 1
        if k < 2:
            out.append((mask, off))
            continue
        area = mask.sum(axis=tuple(a for a in range(3) if a != ax))
        first = int(np.flatnonzero(area)[0]) - s.erosion
        cuts = [0]
        for j in range(1, k):
            guess, r = first + round(j * h / k), max(1, round(typical / 3))
            cand = np.arange(max(guess - r, 1), min(guess + r + 1, len(area)))
            # Narrowest cross-section; among equals (a waistless column) the one nearest the guess.
            cuts.append(int(cand[np.lexsort((np.abs(cand - guess), area[cand]))[0]]))
        cuts.append(mask.shape[ax])
        rows = np.arange(mask.shape[ax]).reshape([-1 if a == ax else 1 for a in range(3)])
        for lo, hi in itertools.pairwise(cuts):
            piece = mask & (rows >= lo) & (rows < hi)
            if piece.any():
                out.append((piece, off))
        logger.info("split a body %d voxels tall into %d (typical height %.0f)", h, k, typical)
    return out


def map_labels(semantic: np.ndarray, mapping: Mapping[int, int] | None = None) -> np.ndarray:
    """Semantic labels -> instance-model input ids (uint8); unmapped labels become 0."""
    mapping = DEFAULT_MAPPING if mapping is None else mapping
    lut = np.zeros(max(int(semantic.max(initial=0)), *mapping.keys()) + 1, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut[semantic.astype(np.intp, copy=False)]


def crop_padded(
    volume: np.ndarray, origin: Sequence[int], size: Sequence[int], *, fill: int = 0
) -> np.ndarray:
    """``volume[origin : origin + size]`` with ``fill`` wherever the window leaves the volume."""
    out = np.full(tuple(size), fill, dtype=volume.dtype)
    src, dst = [], []
    for o, n, dim in zip(origin, size, volume.shape, strict=True):
        lo, hi = max(o, 0), min(o + n, dim)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - o, hi - o))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def make_cutouts(
    semantic: np.ndarray,
    centres: np.ndarray | Sequence[Sequence[float]],
    *,
    size: Sequence[int] = CUTOUT_SIZE,
    mapping: Mapping[int, int] | None = None,
    subject: str = "",
) -> list[Cutout]:
    """One `Cutout` of ``size`` voxels around each centre, labels mapped to model input ids.

    The centre voxel lands at ``size // 2`` of the cutout. The one-hot encoding is left to the
    model wrapper, so a cutout stays 1 byte per voxel on the wire.

    Parameters
    ----------
    semantic : ndarray, shape (P, I, R), int
    centres : (N, 3) array-like, ordered bottom -> top (as ``find_centres`` returns them)
    size : three ints, the model's ``cutout_size``
    mapping : semantic label -> input id; default `DEFAULT_MAPPING`
    subject : carried along so a cutout task knows its subject
    """
    mapped = map_labels(semantic, mapping)
    half = np.asarray(size) // 2
    out = []
    for i, c in enumerate(np.asarray(centres, dtype=float).reshape(-1, 3)):
        centre = tuple(int(v) for v in np.round(c))
        origin = tuple(int(v) for v in np.asarray(centre) - half)
        arr = crop_padded(mapped, origin, size)
        out.append(Cutout(subject, i, centre, origin, arr))  # type: ignore[arg-type]
    return out


# Vertebrae the instance model is trained to separate, in cranio-caudal order (C1..L6 with
# T13); the sacrum is mapped to background in its input, so it is never a target.
_TARGET_ORDER = [v for k, v in VERTEBRA_IDS.items() if k != "S1"]
_TARGET_ORDER.sort(key=lambda v: v if v != VERTEBRA_IDS["T13"] else 19.5)


def cutout_targets(instance_cutout: np.ndarray, centre_label: int) -> np.ndarray:
    """Training target for one cutout: 1 vertebra above, 2 centre, 3 below, 0 everything else.

    "Above" / "below" are the nearest vertebrae present in the cutout before / after
    ``centre_label`` in the anatomical order (C1..T12, T13, L1..L6), so a missing vertebra in
    the ground truth does not shift the targets. IVDs, endplates and the sacrum are 0.

    Examples
    --------
    >>> gt = np.array([[[8, 9, 10, 11, 109]]])
    >>> cutout_targets(gt, 10).tolist()
    [[[0, 1, 2, 3, 0]]]
    """
    present = set(np.unique(instance_cutout).tolist())
    order = [v for v in _TARGET_ORDER if v in present or v == centre_label]
    if centre_label not in _TARGET_ORDER:
        raise ValueError(f"centre label {centre_label} is not a vertebra id (C1..L6, T13)")
    k = order.index(centre_label)
    target = np.zeros(instance_cutout.shape, dtype=np.uint8)
    target[instance_cutout == centre_label] = 2
    if k > 0:
        target[instance_cutout == order[k - 1]] = 1
    if k + 1 < len(order):
        target[instance_cutout == order[k + 1]] = 3
    return target
