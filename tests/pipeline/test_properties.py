"""Property test: merge + post-processing on random small label volumes never break the scheme."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spineps_dask.labels import ENDPLATE_OFFSET, IVD_OFFSET, SPINE_SEMANTIC, VERTEBRA_IDS
from spineps_dask.pipeline import (
    CutoutPrediction,
    MergeSettings,
    merge_predictions,
    postprocess_instances,
)

SEM_LABELS = [0, 0, 41, 49, 49, 100, 62, 26, 61, 60]
SCHEME = (
    {0}
    | set(VERTEBRA_IDS.values())
    | {IVD_OFFSET + v for v in VERTEBRA_IDS.values()}
    | {ENDPLATE_OFFSET + v for v in VERTEBRA_IDS.values()}
)


def _blocky(coarse: np.ndarray) -> np.ndarray:
    """Upsample by 2 so random labels form components of several voxels."""
    return np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)


semantic_st = arrays(np.uint8, (3, 10, 3), elements=st.sampled_from(SEM_LABELS)).map(_blocky)
prediction_st = st.tuples(
    arrays(np.uint8, (3, 6, 3), elements=st.integers(0, 3)).map(_blocky),
    st.integers(-3, 3),
    st.integers(-4, 14),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    semantic=semantic_st,
    preds=st.lists(prediction_st, min_size=0, max_size=6),
    seed=st.integers(0, 99),
)
def test_merge_and_postprocess_keep_the_label_scheme(semantic, preds, seed):
    """No crash; ids only from the scheme; nothing outside the spine mask; order-independent."""
    predictions = [
        CutoutPrediction(i, (p0, p1, 0), classes) for i, (classes, p0, p1) in enumerate(preds)
    ]
    s = MergeSettings(vert_size_threshold=4)
    merged = merge_predictions(predictions, semantic.shape, settings=s)
    assert merged.dtype == np.uint16
    ids = np.unique(merged)
    vertebrae = [int(i) for i in ids if i != 0]
    assert vertebrae == list(range(1, len(vertebrae) + 1))  # 1..N, contiguous (0 may be absent)

    shuffled = predictions[:]
    random.Random(seed).shuffle(shuffled)
    assert np.array_equal(merge_predictions(shuffled, semantic.shape, settings=s), merged)

    final, labeling = postprocess_instances(merged, semantic)
    assert set(np.unique(final).tolist()) <= SCHEME
    assert not final[~np.isin(semantic, SPINE_SEMANTIC)].any()
    again, labeling2 = postprocess_instances(merged.copy(), semantic.copy())
    assert np.array_equal(final, again) and labeling2 == labeling
