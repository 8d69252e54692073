"""The composed instance phase (instance grid -> cutouts -> merge -> post-process -> labels).

An oracle stands in for the instance model here, named as such: each cutout's prediction is
its ground-truth target (`cutout_targets`). With perfect cutout answers the composition must
give back the phantom's own instance mask, so any loss is the composition's fault.
"""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.phantom import make_phantom
from spineps_dask.pipeline.cutouts import crop_padded, cutout_targets
from spineps_dask.pipeline.merge import CutoutPrediction
from spineps_dask.pipeline.preprocess import crop_pad, preprocess
from spineps_dask.pipeline.segment import (
    InstanceSpace,
    assemble,
    cutouts_at,
    instance_input,
    plan_cutouts,
)

SPACE = InstanceSpace(spacing=(1.5, 1.5, 3.0), cutout_size=(64, 96, 32))


def _oracle_predictions(cutouts, gt_on_grid):
    preds = []
    for c in cutouts:
        gt = crop_padded(gt_on_grid, c.origin, SPACE.cutout_size)
        near = gt[tuple(slice(s // 2 - 3, s // 2 + 4) for s in SPACE.cutout_size)]
        near = near[(near > 0) & (near < 100) & (near != 26)]
        label = int(np.bincount(near).argmax()) if near.size else 0
        target = cutout_targets(gt, label) if label else np.zeros_like(c.array)
        preds.append(CutoutPrediction.from_cutout(c, target))
    return preds


def _run(seed, **overrides):
    ph = make_phantom(seed, **overrides)
    _, record = preprocess(ph.image)
    sem = crop_pad(ph.semantic, record)
    gt = instance_input(crop_pad(ph.instance, record), SPACE)  # the very grid of the mask
    inst_in = instance_input(sem, SPACE)
    centres = plan_cutouts(inst_in, SPACE)
    cutouts = cutouts_at(np.asarray(inst_in.data), centres, range(len(centres)), SPACE)
    preds = _oracle_predictions(cutouts, np.asarray(gt.data))
    sem_out, inst_out, labeling, ctd = assemble(sem, inst_in, preds, record, SPACE)
    return ph, sem_out, inst_out, labeling, ctd


def _vertebra_dice(ref, got):
    ids = [int(v) for v in np.unique(ref) if 0 < v < 100 and v != 26]
    return {
        v: 2 * np.sum((ref == v) & (got == v)) / (np.sum(ref == v) + np.sum(got == v)) for v in ids
    }


@pytest.mark.parametrize("orientation", [("P", "I", "R"), ("L", "P", "S")])
def test_oracle_cutouts_give_back_the_phantom_with_c2_labels(orientation):
    """Cervical phantom, C2 in view: every vertebra found, named right, in the input geometry."""
    ph, sem_out, inst_out, labeling, ctd = _run(4, orientation=orientation)
    assert labeling.anchor == "C2"
    np.testing.assert_array_equal(sem_out.data, ph.semantic.data)
    np.testing.assert_allclose(inst_out.affine, ph.image.affine)
    dice = _vertebra_dice(np.asarray(ph.instance.data), np.asarray(inst_out.data))
    assert min(dice.values()) > 0.95, dice
    assert set(ctd) >= set(dice)


def test_oracle_lumbar_is_anchored_on_the_sacrum():
    """A lumbar field of view (top vertebra cut, no C2) is named from the sacrum upwards."""
    ph, _, inst_out, labeling, _ = _run(0)
    assert labeling.anchor == "sacrum"
    dice = _vertebra_dice(np.asarray(ph.instance.data), np.asarray(inst_out.data))
    named_right = [v for v, d in dice.items() if d > 0.9]
    assert len(named_right) >= len(dice) - 1, dice  # the vertebra cut at the border may go


def test_reference_size_limits_convert_by_volume_and_floor_at_the_reference_grid():
    """Reference voxel counts become the same volume on the model grid; the reference's floor of
    40 voxels is 40 voxels of ITS grid (0.75 x 0.75 x 1.65 mm), so on the coarse demo grid an
    eroded cervical body (~36 voxels of 12 mm³) still counts as a body."""
    reference = InstanceSpace(spacing=(0.75, 0.75, 1.65))
    assert reference.centre_settings.corpus_size_cleaning == int(100 * 2.42 / 0.928125)
    fine = InstanceSpace(spacing=(0.5, 0.5, 0.5), corpus_size_cleaning=1)
    assert fine.centre_settings.corpus_size_cleaning == round(40 * 0.928125 / 0.125)
    coarse = InstanceSpace(spacing=(2.0, 2.0, 3.0))
    assert coarse.centre_settings.corpus_size_cleaning == int(100 * 2.42 / 12.0) == 20
    assert coarse.merge_settings.vert_size_threshold == int(250 * 2.42 / 12.0)


def test_reference_mode_numbers_from_c1_for_a_ct_model_with_c1():
    """`spineps` 2.1.3 names from the top as C2; with a CT semantic model that segments C1
    (``has_c1``) as C1: the same vertebrae, each one number lower (`ReferenceNumbering`)."""
    from spineps_dask.pipeline.segment import ReferenceNumbering

    ph = make_phantom(4)
    _, record = preprocess(ph.image)
    sem = crop_pad(ph.semantic, record)
    gt = instance_input(crop_pad(ph.instance, record), SPACE)
    inst_in = instance_input(sem, SPACE)
    centres = plan_cutouts(inst_in, SPACE)
    cutouts = cutouts_at(np.asarray(inst_in.data), centres, range(len(centres)), SPACE)
    preds = _oracle_predictions(cutouts, np.asarray(gt.data))
    named = {}
    for offset in (1, 0):
        numbering = ReferenceNumbering(labeling_offset=offset)
        _, inst, _, _ = assemble(
            sem, inst_in, preds, record, SPACE, reference_mode=True, numbering=numbering
        )
        named[offset] = sorted(int(v) for v in np.unique(inst.data) if 0 < v < 26)
    assert named[1] and named[1][0] == 2  # C2 at the top, as `spineps -ml none`
    assert named[0] == [v - 1 for v in named[1]]  # C1 at the top
