"""Panoptic quality: known answers and agreement with the panoptica package (within 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from spineps_dask.metrics.panoptic import match_instances, panoptic_quality
from spineps_dask.metrics.structures import INSTANCE_GROUPS

from .conftest import load_sample


def _blocks(shape=(30, 30, 30), labels=(1, 2, 3)):
    """Instances as 6-voxel cubes along axis 0, 8 voxels apart."""
    arr = np.zeros(shape, np.uint16)
    for i, lab in enumerate(labels):
        arr[2 + 8 * i : 8 + 8 * i, 5:11, 5:11] = lab
    return arr


def test_identical_maps_have_pq_one():
    ref = _blocks()
    res = panoptic_quality(ref, ref, spacing=(1, 1, 1))
    assert (res.tp, res.fp, res.fn) == (3, 0, 0)
    assert res.rq == res.sq == res.pq == res.sq_dsc == 1.0
    assert res.sq_assd == 0.0


def test_missing_and_extra_instances_set_rq():
    """One reference missed, one spurious prediction: TP 2, FP 1, FN 1 -> RQ 2 / 3."""
    ref = _blocks(labels=(1, 2, 3))
    pred = ref.copy()
    pred[pred == 3] = 0
    pred[20:24, 20:24, 20:24] = 9
    res = panoptic_quality(pred, ref, spacing=(1, 1, 1))
    assert (res.tp, res.fp, res.fn) == (2, 1, 1)
    assert res.rq == pytest.approx(2 / 3)
    assert res.pq == pytest.approx(2 / 3)


def test_iou_exactly_half_is_a_match_and_a_tie_goes_to_the_lower_reference():
    """IoU >= 0.5 matches (paper, Methods 2.6); a prediction covering two equal references
    has IoU 0.5 with both and is matched once, to the lower reference label."""
    ref = np.zeros((10, 10, 10), np.uint8)
    ref[0:2, 0:2, 0:2] = 1
    ref[2:4, 0:2, 0:2] = 2
    pred = np.zeros_like(ref)
    pred[0:4, 0:2, 0:2] = 7
    matches = match_instances(pred, ref)
    assert [(m.ref_label, m.pred_label, m.iou) for m in matches] == [(1, 7, 0.5)]
    below = pred.copy()
    below[4, 0, 0] = 7  # one voxel more: IoU 8/17 with both references, no match
    assert match_instances(below, ref) == []
    assert [m.ref_label for m in match_instances(below, ref, threshold=8 / 17)] == [1]


def test_no_instances_anywhere_gives_nan_and_one_side_empty_gives_zero():
    empty = np.zeros((5, 5, 5), np.uint8)
    ref = empty.copy()
    ref[1:3, 1:3, 1:3] = 4
    none = panoptic_quality(empty, empty, spacing=(1, 1, 1))
    assert math.isnan(none.rq) and math.isnan(none.pq) and math.isnan(none.sq_assd)
    missed = panoptic_quality(empty, ref, spacing=(1, 1, 1))
    assert missed.rq == 0.0 and missed.pq == 0.0 and missed.sq_assd == math.inf


# ---- agreement with panoptica -----------------------------------------------------------------


def _panoptica(pred, ref, spacing):
    panoptica = pytest.importorskip("panoptica")
    from panoptica.utils.citation_reminder import disable_citation_reminder

    disable_citation_reminder()
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.UNMATCHED_INSTANCE,
        instance_matcher=panoptica.NaiveThresholdMatching(),
        instance_metrics=[panoptica.Metric.DSC, panoptica.Metric.IOU, panoptica.Metric.ASSD],
        global_metrics=[panoptica.Metric.DSC],
    )
    result = next(iter(evaluator.evaluate(pred, ref, voxelspacing=spacing, verbose=False).values()))
    per_instance = {
        key: result.get_list_metric(metric, mode=panoptica.MetricMode.ALL)
        for key, metric in (("dsc", panoptica.Metric.DSC), ("assd", panoptica.Metric.ASSD))
    }
    return result.to_dict(), per_instance


def _assert_agrees(pred, ref, spacing, labels=None):
    ours = panoptic_quality(pred, ref, spacing=spacing, labels=labels)
    if labels is not None:
        from spineps_dask.metrics.panoptic import restrict_labels

        pred, ref = restrict_labels(pred, labels), restrict_labels(ref, labels)
    theirs, their_instances = _panoptica(pred.astype(np.uint16), ref.astype(np.uint16), spacing)
    assert (ours.tp, ours.fp, ours.fn) == (theirs["tp"], theirs["fp"], theirs["fn"])
    pairs = [
        (ours.rq, "rq"),
        (ours.sq, "sq"),
        (ours.pq, "pq"),
        (ours.sq_dsc, "sq_dsc"),
        (ours.pq_dsc, "pq_dsc"),
        (ours.sq_assd, "sq_assd"),
    ]
    for value, key in pairs:
        other = theirs[key]
        if math.isnan(value) or math.isinf(value):
            assert value == other or (math.isnan(value) and math.isnan(other)), key
        else:
            assert value == pytest.approx(other, abs=1e-6), key
    # per matched instance (panoptica lists them in reference-label order, as we do)
    assert [m.dice for m in ours.matches] == pytest.approx(their_instances["dsc"], abs=1e-6)
    assert [m.assd for m in ours.matches] == pytest.approx(their_instances["assd"], abs=1e-6)
    return ours


def _random_instances(seed, shape=(40, 40, 24), n=6):
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2.5)
    labels, _ = ndimage.label(noise > 0.05)
    return (labels % (n + 1)).astype(np.uint16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_panoptica_on_synthetic_maps(seed):
    """Shifted, partly relabelled random instance maps: same TP/FP/FN, RQ/SQ/PQ, Dice, ASSD."""
    ref = _random_instances(seed)
    pred = np.roll(ref, 1, axis=seed % 3)
    pred[pred == 2] = 11  # a relabelled instance still matches
    pred[pred == 3] = 0  # a missed one
    pred[_random_instances(seed + 10) == 1] = 12  # spurious overlapping instance
    _assert_agrees(pred, ref, (0.8, 1.1, 2.5))


def _perturb(inst, how):
    out = inst.copy()
    labels = [int(x) for x in np.unique(inst) if x]
    if how == "eroded":
        out[:] = 0
        for lab in labels:
            out[ndimage.binary_erosion(inst == lab)] = lab
    elif how == "shifted":
        out = np.roll(inst, (2, -1, 1), axis=(0, 1, 2))
    elif how == "removed":
        out[inst == labels[1]] = 0
    elif how == "merged":
        out[inst == labels[1]] = labels[0]
    elif how == "dilated":
        for lab in labels[::-1]:
            grown = ndimage.binary_dilation(inst == lab, iterations=2)
            out[grown & (out == 0)] = lab
    return out


@pytest.mark.parametrize("how", ["eroded", "shifted", "removed", "merged", "dilated"])
@pytest.mark.parametrize("sample", ["mri", "ct"])
def test_agrees_with_panoptica_on_real_samples(sample, how):
    """tptbox real masks against perturbed copies, per instance group (vertebrae, IVDs, ...)."""
    _, inst, spacing = load_sample(sample)
    pred = _perturb(inst, how)
    for group in INSTANCE_GROUPS:
        if not np.isin(inst, group.labels).any():
            continue
        _assert_agrees(pred, inst, (spacing[0], 1.0, spacing[2] * 1.3), labels=group.labels)
