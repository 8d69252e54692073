"""`benchmarks/real_crop_confusion.py --tolerance` and ``--grid-ceiling``: what one voxel of error
costs each structure, and what a perfect model on the model's grid would score (the yardsticks
RESULTS.md sets the real crop's canal and cord figures against)."""

from __future__ import annotations

import numpy as np

from benchmarks.real_crop_confusion import grid_ceiling, one_voxel_costs


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


def test_grid_ceiling_is_perfect_on_the_own_grid_and_loses_thin_structures_on_a_coarser_one():
    # P-I-R at 1.5 mm: a cord one voxel deep (P) survives its own grid whole. On a grid twice
    # as coarse along P (3 mm) and back, nearest neighbour samples every other P plane and
    # doubles it: the 8-plane canal keeps most of itself, the one-plane cord is lost or comes
    # back two planes deep (Dice 2/3 at best).
    truth = np.zeros((16, 10, 8), np.uint8)
    truth[4:12, 1:9, 2:6] = 61
    truth[9, 1:9, 3:5] = 60
    # array axes P, I, R: +P is world -A (column 0 -> -y), +I is -S, +R is +x
    affine = np.array([[0, 0, 1.5, 0], [-1.5, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, 0, 1.0]])
    own = grid_ceiling(truth, affine, ("P", "I", "R"), (1.5, 1.5, 1.5))
    assert own["cord"] == 1.0 and own["canal"] == 1.0
    coarse = grid_ceiling(truth, affine, ("P", "I", "R"), (3.0, 1.5, 1.5))
    assert coarse["canal"] > 0.8 and coarse["cord"] <= 2 / 3
