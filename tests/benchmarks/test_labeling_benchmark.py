"""The naming benchmark's summary (benchmarks/labeling.py): what it counts as named right."""

import pandas as pd

from benchmarks.labeling import summarize


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
