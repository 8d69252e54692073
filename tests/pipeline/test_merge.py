"""Agreement-ordered merge of hand-made cutout predictions."""

from __future__ import annotations

import random

import numpy as np
import pytest

from spineps_dask.pipeline.merge import (
    ABOVE,
    BELOW,
    CENTRE,
    CutoutPrediction,
    MergeSettings,
    merge_predictions,
)

SHAPE = (20, 90, 20)
CUT = (20, 50, 20)
# Blocks top -> bottom along axis 1 (inferior): rows [start, start + 10).
STARTS = [10, 30, 50, 70]


def _block(start: int, rows: slice | None = None) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[5:15, start : start + 10, 5:15] = True
    if rows is not None:
        keep = np.zeros(SHAPE, bool)
        keep[:, rows] = True
        m &= keep
    return m


def _prediction(index: int, centre_row: int, masks: dict[int, np.ndarray]) -> CutoutPrediction:
    """Cut a (P, I, R) window centred on ``centre_row`` from full-volume class masks."""
    origin = (0, centre_row - CUT[1] // 2, 0)
    full = np.zeros(SHAPE, np.uint8)
    for kind, m in masks.items():
        full[m] = kind
    classes = np.zeros(CUT, np.uint8)
    lo, hi = max(origin[1], 0), min(origin[1] + CUT[1], SHAPE[1])
    classes[:, lo - origin[1] : hi - origin[1]] = full[:, lo:hi]
    return CutoutPrediction(index, origin, classes)


def _clean_predictions(n: int = 3) -> list[CutoutPrediction]:
    """Cutouts bottom -> top over the first ``n`` blocks, each naming above / centre / below."""
    blocks = [_block(s) for s in STARTS[:n]]
    preds = []
    for index, b in enumerate(reversed(range(n))):  # index 0 = bottom block
        masks = {CENTRE: blocks[b]}
        if b > 0:
            masks[ABOVE] = blocks[b - 1]
        if b + 1 < n:
            masks[BELOW] = blocks[b + 1]
        preds.append(_prediction(index, STARTS[b] + 5, masks))
    return preds


def _expected(n: int) -> np.ndarray:
    out = np.zeros(SHAPE, np.uint16)
    for i, s in enumerate(STARTS[:n], start=1):
        out[_block(s)] = i
    return out


def test_three_blocks_give_three_vertebrae_top_to_bottom():
    """Consistent predictions of three blocks merge into exactly vertebrae 1, 2, 3 top-down."""
    out = merge_predictions(_clean_predictions(3), SHAPE)
    assert out.dtype == np.uint16
    assert np.array_equal(out, _expected(3))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_result_does_not_depend_on_prediction_order(seed):
    """Shuffling the predictions (tasks finishing in any order) gives the identical mask."""
    preds = _clean_predictions(4)
    ref = merge_predictions(preds, SHAPE)
    random.Random(seed).shuffle(preds)
    assert np.array_equal(merge_predictions(preds, SHAPE), ref)
    assert np.array_equal(ref, _expected(4))


def test_wrong_low_agreement_proposal_does_not_win():
    """One cutout swallowing a neighbour's half into its 'above' class is outvoted."""
    preds = _clean_predictions(4)
    # Cutout 2 is centred on block 1 (second from top): make its 'above' = block 0 + top of
    # block 1, its 'centre' only the lower half of block 1.
    wrong_above = _block(STARTS[0]) | _block(STARTS[1], slice(STARTS[1], STARTS[1] + 5))
    preds[2] = _prediction(
        2,
        STARTS[1] + 5,
        {
            ABOVE: wrong_above,
            CENTRE: _block(STARTS[1], slice(STARTS[1] + 5, STARTS[1] + 10)),
            BELOW: _block(STARTS[2]),
        },
    )
    out = merge_predictions(preds, SHAPE)
    assert np.array_equal(out, _expected(4))


def test_partial_votes_keep_majority_voxels():
    """A voxel proposed by one of three agreeing cutouts (fraction 1/3 < 0.45) is left out."""
    preds = _clean_predictions(3)
    extra = _block(STARTS[1]).copy()
    extra[5:15, STARTS[1] + 10, 5:15] = True  # one cutout claims an extra slab under block 1
    preds[1] = _prediction(
        1, STARTS[1] + 5, {ABOVE: _block(STARTS[0]), CENTRE: extra, BELOW: _block(STARTS[2])}
    )
    out = merge_predictions(preds, SHAPE)
    assert np.array_equal(out, _expected(3))


def test_small_vertebrae_are_dropped():
    """Vertebrae under vert_size_threshold voxels disappear; ids stay contiguous."""
    out = merge_predictions(
        _clean_predictions(3), SHAPE, settings=MergeSettings(vert_size_threshold=1001)
    )
    assert out.max() == 0
    out = merge_predictions(
        _clean_predictions(3), SHAPE, settings=MergeSettings(vert_size_threshold=1000)
    )
    assert sorted(np.unique(out).tolist()) == [0, 1, 2, 3]


def test_cutout_beyond_volume_is_clipped():
    """Predictions hanging over the volume border only write inside it."""
    preds = _clean_predictions(2)
    assert preds[1].origin[1] < 0
    out = merge_predictions(preds, SHAPE)
    assert np.array_equal(out, _expected(2))


def test_duplicate_indices_rejected():
    """Two predictions with the same cutout index are a caller bug, not silently merged."""
    p = _clean_predictions(2)
    with pytest.raises(ValueError, match="unique"):
        merge_predictions([p[0], p[0]], SHAPE)


def test_proposal_fusing_two_vertebrae_is_outvoted():
    """The top cutout's 'below' covering two whole blocks does not fuse them."""
    preds = _clean_predictions(4)
    preds[3] = _prediction(
        3, STARTS[0] + 5, {CENTRE: _block(STARTS[0]), BELOW: _block(STARTS[1]) | _block(STARTS[2])}
    )
    out = merge_predictions(preds, SHAPE)
    assert np.array_equal(out, _expected(4))
