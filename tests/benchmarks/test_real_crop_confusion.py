"""`benchmarks/real_crop_confusion.py --tolerance`: what one voxel of error costs each structure
(the yardstick RESULTS.md sets the real crop's canal and cord figures against)."""

from __future__ import annotations

import numpy as np

from benchmarks.real_crop_confusion import one_voxel_costs


def test_one_voxel_costs_follow_each_axis_by_its_orientation_letter():
    # A cord 2 voxels deep (anterior-posterior, array axis 2 here), 4 wide, 10 tall: moved one
    # voxel along AP it keeps half its voxels; along the superior axis 9 of 10 rows.
    truth = np.zeros((10, 12, 8), np.uint8)
    truth[2:6, 1:11, 3:5] = 60
    costs = one_voxel_costs(truth, ("R", "S", "A"))["cord"]
    assert costs["moved AP"] == 0.5
    assert np.isclose(costs["moved SI"], 0.9)
    assert np.isclose(costs["moved LR"], 0.75)
    # One voxel thicker at front and back: 80 true of 160 predicted; one thinner: nothing left.
    assert np.isclose(costs["grown AP"], 2 * 80 / 240)
    assert costs["shrunk AP"] == 0.0


def test_a_missing_structure_scores_without_dividing_by_zero():
    costs = one_voxel_costs(np.zeros((4, 4, 4), np.uint8), ("P", "I", "R"))
    assert set(costs) == {"body", "ivd", "canal", "cord"}
    assert all(np.isfinite(v) for row in costs.values() for v in row.values())
