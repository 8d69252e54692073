"""The naming benchmark's scoring (benchmarks/labeling.py): what counts as named right."""

import numpy as np
import pandas as pd

from benchmarks.labeling import named_right, summarize


def test_a_vertebra_the_segmentation_missed_is_not_found_and_not_right():
    """L1 (20) named right, L2 (21) named L3, L3 (22) covered by nothing: right, wrong,
    missed (None); the sacrum (26) and discs are not scored."""
    ref = np.zeros((4, 4, 4), np.uint16)
    ref[0], ref[1], ref[2], ref[3, :2] = 20, 21, 22, 26
    ref[3, 2:] = 120
    pred = np.zeros_like(ref)
    pred[0], pred[1] = 20, 22
    pred[3] = 26
    assert named_right(pred, ref) == {20: True, 21: False, 22: None}


def test_right_of_found_leaves_missed_vertebrae_out():
    """Over all vertebrae 2 of 4 are right; of the 3 the segmentation found, 2."""
    rows = pd.DataFrame(
        {
            "method": ["model"],
            "anchored": [True],
            "vertebrae": [4],
            "found": [3],
            "right": [2],
            "all_right": [False],
            "t13": [None],
            "l6": [None],
            "low_confidence": [False],
        }
    )
    out = summarize(rows).iloc[0]
    assert out["vertebrae right"] == "50.0% of 4"
    assert out["right of found"] == "66.7% of 3"
