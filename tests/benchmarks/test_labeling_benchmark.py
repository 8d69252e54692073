"""The naming benchmark (benchmarks/labeling.py): what it counts as named right, and which
vertebrae it counts as kept."""

import pandas as pd
import pytest

from benchmarks.labeling import kept_min_voxels, summarize


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
            "kept": [3],
            "kept_right": [2],
            "kept_all_right": [False],
            "t13": [None],
            "l6": [None],
            "low_confidence": [False],
        }
    )
    out = summarize(rows).iloc[0]
    assert out["vertebrae right"] == "50.0% of 4"
    assert out["right of found"] == "66.7% of 3"
    assert out["right of kept"] == "66.7% of 3"
    assert out["kept: anchored / unanchored"] == "66.7% / -"


def test_kept_vertebrae_are_those_the_instance_phase_can_keep():
    """The demo instance model drops vertebrae under 50 voxels of its 2 x 2 x 3 mm grid (the
    reference's 250 voxels of 2.42 mm³): 600 voxels of 1 mm³, 300 of 2 mm³."""
    assert kept_min_voxels((1.0, 1.0, 1.0)) == pytest.approx(600)
    assert kept_min_voxels((1.0, 1.0, 2.0)) == pytest.approx(300)
