"""The whole post-processing phase of spineps 2.1.3, step by step, on P-I-R arrays.

Mirrors ``spineps.phase_post.phase_postprocess_combined`` as ``seg_run.segment_image`` calls
it without a labelling model (``-ml none``), with its defaults: instance cleaned by the
semantic mask, articular inconsistencies fixed, missing components assigned (not the fast
variant), split top vertebra merged, posterior fragments fixed, numbering from the top.
"""

from __future__ import annotations

import logging

import numpy as np

from spineps_dask.pipeline.reference._arrays import bounding_box
from spineps_dask.pipeline.reference.discs import DISC, attach_discs_endplates
from spineps_dask.pipeline.reference.instances import (
    METAL,
    S1,
    apply_overrides,
    fix_posterior_fragments,
    merge_split_top_vertebra,
    number_top_to_bottom,
)
from spineps_dask.pipeline.reference.reconcile import (
    assign_articular_processes,
    assign_missing_components,
)

logger = logging.getLogger(__name__)

#: Margin the reference crops to around the semantic mask (``POSTPROCESS_CROP_MARGIN_MM``:
#: twice the finest reference spacing, 0.75 mm), in voxels of the finest axis, truncated.
CROP_MARGIN_MM = 2 * 0.75
#: The semantic model's body label 50 is folded into 49 before post-processing
#: (``seg_run.segment_image``, at model resolution; nearest-neighbour resampling commutes).
_CORPUS_BORDER, _CORPUS = 50, 49


def _crop_box(semantic: np.ndarray, zoom: tuple[float, float, float]) -> tuple[slice, ...] | None:
    """The reference's crop: non-zero box plus ``int(1.5 mm / finest spacing)`` voxels.

    Nothing outside it is non-zero, and every step's result inside it is the same as on the
    whole array (growth and components stay inside the mask); cropping only saves time.
    """
    return bounding_box(semantic != 0, pad=int(CROP_MARGIN_MM / min(zoom)))


def postprocess_like_reference(
    semantic: np.ndarray,
    instance: np.ndarray,
    *,
    zoom: tuple[float, float, float],
    scan_orientation: str = "PIR",
    labeling_offset: int = 1,
    sacrum_ids: tuple[int, ...] = (S1,),
    metal_ids: tuple[int, ...] = (METAL,),
) -> tuple[np.ndarray, np.ndarray]:
    """Final semantic and instance masks exactly as spineps 2.1.3 post-processes them.

    Parameters
    ----------
    semantic
        Semantic mask on the scan grid, (P, I, R) with axis 1 pointing inferior, integer
        labels (41-50, 26, 60-62, 100, ...). 50 is treated as 49, as the reference maps it.
    instance
        Merged vertebra instances on the same grid, ids 1..N in any order (what the
        reference's instance phase returns, resampled to the scan); 0 is background.
    zoom
        Voxel size in mm. Only the smallest value and the product are used, so the axis
        order does not matter.
    scan_orientation
        Axis codes of the scan the reference would have run on, before the caller's
        reorientation to P-I-R (e.g. ``"ASR"``). One reference step, the merge of a split
        top vertebra, sorts by axis 1 of that orientation without reorienting.
    labeling_offset
        ``vertebra_instance_labeling_offset - 1`` of ``segment_image``: 1 (first vertebra is
        C2 = 2), or 0 for CT semantic models with ``has_c1``.
    sacrum_ids, metal_ids
        The semantic model's ``sacrum_ids`` / ``metal_ids`` (inference config defaults).

    Returns
    -------
    (semantic, instance)
        New arrays of the input shape: the semantic mask in its input dtype (uncovered
        vertebra pieces deleted, 50 -> 49, endplates split into 52 / 53), the instance mask
        as uint16 (vertebrae numbered from the top, 26 sacrum, 80 metal, 100+X discs,
        200+X endplates).

    Raises
    ------
    ValueError
        If the shapes differ or the arrays are not 3D.
    spineps_dask.errors.InputError
        Discs or endplates but no vertebra at all (the reference fails there as well).
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 3 or semantic.shape != instance.shape:
        raise ValueError(
            f"semantic {semantic.shape} and instance {instance.shape} must be the same 3D grid"
        )
    sem_out = np.where(semantic == _CORPUS_BORDER, _CORPUS, semantic).astype(semantic.dtype)
    inst_out = np.zeros(instance.shape, dtype=np.uint16)
    box = _crop_box(sem_out, zoom)
    if box is None:
        logger.warning("empty semantic mask: nothing to post-process")
        return sem_out, inst_out
    sem = np.ascontiguousarray(sem_out[box])
    inst = np.where(sem != 0, instance[box], 0).astype(np.int32)
    inst = assign_articular_processes(inst, sem)
    inst, sem = assign_missing_components(inst, sem)
    if np.any(sem == DISC):
        inst = merge_split_top_vertebra(inst, sem, zoom=zoom, scan_orientation=scan_orientation)
    inst = fix_posterior_fragments(inst, sem)
    inst = number_top_to_bottom(inst, labeling_offset=labeling_offset)
    inst = apply_overrides(inst, sem, sacrum_ids=sacrum_ids, metal_ids=metal_ids)
    inst, sem = attach_discs_endplates(inst, sem)
    sem_out[box] = sem
    inst_out[box] = inst
    return sem_out, inst_out
