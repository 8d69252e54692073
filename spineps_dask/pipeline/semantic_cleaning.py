"""Clean the semantic model's output: drop specks, fill holes (reference doc, semantic phase).

A sliding-window network leaves small islands of a label far from where it belongs and pin-holes
inside large structures; both confuse the body-centre search and the instance model downstream.
`CleaningSettings.reference` gives the cleaning of `spineps` 2.1.3 (``phase_semantic``) at a
given zoom: 6-connected specks under 30 reference voxels' volume, then everything outside the
chain of bounding boxes that starts at the largest structure (`keep_bbox_chain`), then holes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spineps_dask.labels import Semantic
from spineps_dask.pipeline._measure import box_centroids
from spineps_dask.pipeline.resolution import (
    REFERENCE_VOXEL_MM3,
    REFERENCE_ZOOM,
    mm3_to_voxels,
    mm_to_voxels,
)

logger = logging.getLogger(__name__)

_FULL = ndimage.generate_binary_structure(3, 3)


@dataclass(frozen=True)
class CleaningSettings:
    """Reference constants: components < 30 voxels of 41-49, 61, 100 go; 49, 61, 100, 60 filled.

    ``connectivity`` 26 (3D full neighbourhood) keeps diagonally touching voxels together, so
    thin but real structures are not counted as many specks.
    """

    min_size: int = 30
    small_labels: tuple[int, ...] = (*range(41, 50), int(Semantic.CANAL), int(Semantic.DISC))
    fill_labels: tuple[int, ...] = (
        int(Semantic.CORPUS),
        int(Semantic.CANAL),
        int(Semantic.DISC),
        int(Semantic.CORD),
    )
    connectivity: int = 26
    #: Beyond the reference: the sacrum is one bone, so its components under this fraction of
    #: the largest one (and, as for the listed labels, under ``min_size``) are specks. The demo
    #: model scattered hundreds of 1-100 voxel sacrum specks over posterior elements, which
    #: became "S1" instances in cervical and thoracic views.
    sacrum_relative_size: float = 0.1
    #: Beyond the reference: drop sacrum components away from canal and discs, or above the
    #: centre of the vertebral bodies (`drop_misplaced_sacrum`).
    sacrum_position: bool = True
    #: The reference's bounding-box chain (`keep_bbox_chain`): margins in voxels, (all axes,
    #: extra along the inferior axis); None leaves it out.
    bbox_chain: tuple[int, int] | None = None

    @classmethod
    def reference(cls, zoom: tuple[float, float, float]) -> CleaningSettings:
        """`spineps` 2.1.3's semantic cleaning for a mask of voxel size ``zoom`` (mm)."""
        margin_mm = 4 * min(REFERENCE_ZOOM)
        return cls(
            min_size=mm3_to_voxels(30 * REFERENCE_VOXEL_MM3, zoom),
            connectivity=6,
            sacrum_relative_size=0.0,
            sacrum_position=False,
            bbox_chain=(int(margin_mm / min(zoom)), mm_to_voxels(margin_mm, zoom)),
        )


class RemoveSmallComponents:
    """Set connected components under ``min_size`` voxels of the given labels to 0.

    ``relative`` > 0 also removes components under that fraction of the label's largest one.

    Examples
    --------
    >>> seg = np.zeros((1, 1, 6), np.uint8); seg[0, 0, :4] = 49; seg[0, 0, 5] = 49
    >>> RemoveSmallComponents(min_size=2, labels=(49,))(seg)[0, 0].tolist()
    [49, 49, 49, 49, 0, 0]
    """

    def __init__(
        self,
        min_size: int,
        labels: tuple[int, ...],
        *,
        connectivity: int = 26,
        relative: float = 0.0,
    ):
        self.min_size = min_size
        self.labels = labels
        self.relative = relative
        self.structure = _structure(connectivity)

    def __call__(self, seg: np.ndarray) -> np.ndarray:
        out = seg.copy()
        for label in self.labels:
            comps, n = ndimage.label(seg == label, structure=self.structure)
            if n == 0:
                continue
            sizes = np.bincount(comps.ravel())
            floor = max(self.min_size, self.relative * sizes[1:].max())
            small = np.flatnonzero(sizes < floor)
            small = small[small > 0]
            if len(small):
                out[np.isin(comps, small)] = 0
                logger.debug(
                    "label %d: removed %d components < %d", label, len(small), self.min_size
                )
        return out


class FillHoles:
    """Fill enclosed background (0) holes of each label; other labels inside are kept.

    Only background is filled, so the cord (60) inside the canal (61) survives the canal fill.

    Examples
    --------
    >>> seg = np.full((3, 3, 3), 49, np.uint8); seg[1, 1, 1] = 0
    >>> int(FillHoles((49,))(seg)[1, 1, 1])
    49
    """

    def __init__(self, labels: tuple[int, ...]):
        self.labels = labels

    def __call__(self, seg: np.ndarray) -> np.ndarray:
        out = seg.copy()
        for label in self.labels:
            mask = seg == label
            boxes = ndimage.find_objects(mask.astype(np.uint8))
            if not boxes or boxes[0] is None:
                continue
            box = boxes[0]
            filled = ndimage.binary_fill_holes(mask[box])
            region = out[box]
            region[filled & (region == 0)] = label
        return out


def drop_misplaced_sacrum(seg: np.ndarray, *, down: tuple[int, int] | None = None) -> np.ndarray:
    """Remove sacrum components that cannot be the sacrum; returns a new array.

    Beyond the reference. The sacrum holds the sacral canal and lies under the L5-S1 disc, so
    a component with no canal, cord or disc voxel within 2 voxels goes; and the sacrum lies
    below the vertebrae, so with ``down`` = (inferior axis, +1 if the index grows downwards,
    else -1) a component whose centre is above the centre of all vertebral-body voxels goes
    too (the mean, not the lowest body: a model's "body" inside the sacrum must not drop it).
    The demo model left such "sacrum" at the skull base and at the lower edge of cervical
    views, where it became an S1 instance.
    """
    sac, n = ndimage.label(seg == Semantic.SACRUM, structure=_FULL)
    if n == 0:
        return seg.copy()
    near = ndimage.binary_dilation(
        np.isin(seg, (Semantic.CANAL, Semantic.CORD, Semantic.DISC)), _FULL, iterations=2
    )
    keep = set(np.unique(sac[near & (sac > 0)]).tolist()) - {0}
    body_rows = np.nonzero(seg == Semantic.CORPUS)[down[0]] if down is not None else None
    if down is not None and body_rows.size:
        axis, sign = down
        middle = sign * float(body_rows.mean())
        centres = box_centroids(sac)
        keep &= {k for k, c in centres.items() if sign * c[axis] > middle}
    out = seg.copy()
    out[(sac > 0) & ~np.isin(sac, list(keep))] = 0
    return out


def keep_bbox_chain(
    seg: np.ndarray, *, margin: int, inferior_margin: int, inferior_axis: int = 1
) -> np.ndarray:
    """Keep the largest connected structure and every structure whose box touches the chain.

    As the reference's ``semantic_bounding_box_clean``: the foreground's 26-connected components;
    starting from the largest, a component joins when its box (grown by ``margin`` voxels)
    overlaps or touches a joined one's on every axis, the joined box's inferior range grown by
    ``inferior_margin`` more (gaps between vertebrae); repeated until nothing joins. Voxels of
    other components, or outside the joined boxes' hull, go to 0.

    Examples
    --------
    >>> seg = np.zeros((1, 12, 1), np.uint8)
    >>> seg[0, 0:4] = 49; seg[0, 6:7] = 100; seg[0, 11] = 26
    >>> keep_bbox_chain(seg, margin=0, inferior_margin=2)[0, :, 0].tolist()
    [49, 49, 49, 49, 0, 0, 100, 0, 0, 0, 0, 0]
    """
    comps, n = ndimage.label(seg > 0, structure=_FULL)
    if n <= 1:
        return seg.copy()
    sizes = np.bincount(comps.ravel())[1:]
    order = np.argsort(-sizes, kind="stable") + 1  # largest first
    boxes = ndimage.find_objects(comps)
    grown = {
        k: [
            (max(sl.start - margin, 0), min(sl.stop + margin, dim))
            for sl, dim in zip(boxes[k - 1], seg.shape, strict=True)
        ]
        for k in range(1, n + 1)
    }
    joined = [int(order[0])]
    changed = True
    while changed:
        changed = False
        for k in (int(k) for k in order[1:] if int(k) not in joined):
            if any(_chained(grown[j], grown[k], inferior_margin, inferior_axis) for j in joined):
                joined.append(k)
                changed = True
    hull = tuple(
        slice(min(grown[j][a][0] for j in joined), max(grown[j][a][1] for j in joined))
        for a in range(seg.ndim)
    )
    keep = np.zeros(seg.shape, bool)
    keep[hull] = True
    keep &= np.isin(comps, joined)
    out = seg.copy()
    out[~keep] = 0
    return out


def _chained(
    box: list[tuple[int, int]], other: list[tuple[int, int]], extra: int, inferior_axis: int
) -> bool:
    for axis, (a, b) in enumerate(zip(box, other, strict=True)):
        if axis == inferior_axis:
            a = (max(a[0] - extra, 0), a[1] + extra)
        if not _touch(a, b):
            return False
    return True


def _touch(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """The reference's ``overlap_slice``: ranges that overlap or share an end point."""
    if a[0] in b or a[1] in b:
        return True
    return (a[0] < b[0] <= a[1]) or (b[0] < a[0] <= b[1])


def _structure(connectivity: int) -> np.ndarray:
    rank = {6: 1, 18: 2, 26: 3}.get(connectivity)
    if rank is None:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    return ndimage.generate_binary_structure(3, rank)


def clean_semantic(
    seg: np.ndarray,
    *,
    settings: CleaningSettings | None = None,
    down: tuple[int, int] | None = None,
) -> np.ndarray:
    """Remove specks, then fill holes; returns a new array of the same shape and dtype.

    Parameters
    ----------
    seg : ndarray, shape (X, Y, Z), int
        Semantic mask (any orientation; the operations are isotropic in voxels).
    down : (axis, sign), optional
        The inferior axis and +1 / -1 if the index grows downwards / upwards; lets
        `drop_misplaced_sacrum` remove "sacrum" above the centre of the vertebral bodies.
    """
    s = settings or CleaningSettings()
    out = RemoveSmallComponents(s.min_size, s.small_labels, connectivity=s.connectivity)(seg)
    if s.sacrum_relative_size > 0:
        out = RemoveSmallComponents(
            s.min_size,
            (int(Semantic.SACRUM),),
            connectivity=s.connectivity,
            relative=s.sacrum_relative_size,
        )(out)
    if s.sacrum_position:
        out = drop_misplaced_sacrum(out, down=down)
    if s.bbox_chain is not None:
        axis = down[0] if down is not None else 1
        out = keep_bbox_chain(
            out, margin=s.bbox_chain[0], inferior_margin=s.bbox_chain[1], inferior_axis=axis
        )
    return FillHoles(s.fill_labels)(out)
