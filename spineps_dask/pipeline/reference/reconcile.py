"""Make the instance and semantic masks agree, as spineps 2.1.3 does first in post-processing.

Two steps, in the reference's order: articular processes go to the vertebra that owns most of
them (``assign_articular_processes``), then semantic vertebra voxels the instance mask missed
are grown into or handed to a touching vertebra, and the rest deleted
(``assign_missing_components``). Both are orientation-free.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spineps_dask.pipeline.reference._arrays import (
    STRUCTURES,
    components,
    dilate_labels_in_mask,
    grow_box,
)

#: Semantic labels spineps counts as vertebra (``seg_pipeline.vertebra_subreg_labels``):
#: 40 whole vertebra, 41-48 posterior elements, 49/50 body, 51 dens.
VERTEBRA_PARTS = (40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51)
#: Superior / inferior articular processes, left and right, in the order the reference visits.
ARTICULAR_PROCESSES = (45, 46, 47, 48)
#: A process changes hands only when its largest owner, times this, still exceeds the second
#: (the reference's ``ARTICULAR_DOMINANCE_RATIO``).
ARTICULAR_DOMINANCE_RATIO = 0.5


def assign_articular_processes(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Give each articular process component wholly to the vertebra that covers most of it.

    As spineps ``phase_post.assign_vertebra_inconsistency``. Components are 26-connected, per
    label 45-48. Unlabelled voxels count as an owner too: when they dominate, the component
    is *removed* from the instance mask (label 0). Volume ties go to the smaller label. A
    component with a single owner is left as it is.

    Examples
    --------
    >>> sem = np.full((1, 1, 4), 45); inst = np.array([[[3, 3, 3, 4]]])
    >>> assign_articular_processes(inst, sem).tolist()
    [[[3, 3, 3, 3]]]
    """
    out = instance.copy()
    for process in ARTICULAR_PROCESSES:
        comps, _ = components(semantic == process, connectivity=3)
        for i, box in enumerate(ndimage.find_objects(comps), start=1):
            if box is None:
                continue
            comp = comps[box] == i
            owners = np.bincount(out[box][comp].astype(np.intp))
            ranked = sorted(np.flatnonzero(owners), key=lambda k: (-owners[k], k))
            if len(ranked) < 2:
                continue
            first, second = ranked[0], ranked[1]
            if owners[first] * ARTICULAR_DOMINANCE_RATIO > owners[second]:
                out[box][comp] = first
    return out


def assign_missing_components(
    instance: np.ndarray, semantic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cover the semantic vertebra with instances; delete what touches no instance.

    As spineps ``phase_post.mask_cleaning_other`` with ``assign_missing_cc`` (not the fast
    variant). When some vertebra voxel has no instance, every instance first grows two steps
    (face neighbours, ascending label order, inside the vertebra mask: see
    `dilate_labels_in_mask`); each 18-connected component still uncovered then goes to the
    most frequent instance among the voxels of its 18-neighbourhood (ties: the smaller id),
    and a component with no instance around it is deleted from the *semantic* mask. Finally
    instance voxels outside the semantic vertebra (discs, canal, sacrum, ...) are cleared.

    Returns
    -------
    (instance, semantic)
        New arrays, same shapes and dtypes.

    Examples
    --------
    >>> sem = np.array([[[49, 49, 49, 0, 0, 49, 100]]]); inst = np.array([[[2, 0, 0, 0, 0, 0, 0]]])
    >>> inst2, sem2 = assign_missing_components(inst, sem)
    >>> inst2.tolist(), sem2.tolist()
    ([[[2, 2, 2, 0, 0, 0, 0]]], [[[49, 49, 49, 0, 0, 0, 100]]])
    """
    vertebra = np.isin(semantic, VERTEBRA_PARTS)
    out = instance.copy()
    sem = semantic.copy()
    if np.any(vertebra & (out == 0)):
        out = dilate_labels_in_mask(out, vertebra, steps=2, connectivity=1)
        missing = vertebra & (out == 0)
        comps, _ = components(missing, connectivity=2)
        for i, tight in enumerate(ndimage.find_objects(comps), start=1):
            if tight is None:
                continue
            box = grow_box(tight, 1, comps.shape)
            comp = comps[box] == i
            ring = ndimage.binary_dilation(comp, structure=STRUCTURES[2])
            around = out[box][ring]
            around = around[around != 0]
            if around.size:
                out[box][comp] = np.bincount(around.astype(np.intp)).argmax()
            else:
                vertebra[box][comp] = False
                sem[box][comp] = 0
    out[~vertebra] = 0
    return out, sem
