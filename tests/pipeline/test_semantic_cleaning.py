"""Semantic cleaning: speck removal and hole filling with the reference constants."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.pipeline.semantic_cleaning import (
    CleaningSettings,
    FillHoles,
    RemoveSmallComponents,
    clean_semantic,
)


def test_specks_under_30_voxels_removed_only_for_listed_labels():
    """A 27-voxel island of 41 goes, 30 voxels stay; a 27-voxel island of 60 (cord) stays."""
    seg = np.zeros((20, 20, 20), np.uint8)
    seg[1:4, 1:4, 1:4] = 41  # 27 voxels
    seg[10:13, 10:13, 10:13] = 41
    seg[10:13, 10, 13] = 41  # 27 + 3 = 30 voxels
    seg[15:18, 15:18, 15:18] = 60  # not in the list
    out = clean_semantic(seg)
    assert (out[1:4, 1:4, 1:4] == 0).all()
    assert (out[10:13, 10:13, 10:14] == 41).sum() == 30
    assert (out[15:18, 15:18, 15:18] == 60).all()


def test_sacrum_specks_under_a_tenth_of_the_sacrum_removed():
    """The sacrum is one bone: a 64-voxel sacrum piece beside a 1000-voxel sacrum goes (over
    the 30-voxel floor, under 10 %); alone, the same piece stays (nothing larger to compare)."""
    seg = np.zeros((30, 30, 30), np.uint8)
    seg[1:5, 1:5, 1:5] = 26  # 64 voxels
    seg[15:25, 15:25, 15:25] = 26  # 1000 voxels
    out = clean_semantic(seg)
    assert (out[1:5, 1:5, 1:5] == 0).all() and (out[15:25, 15:25, 15:25] == 26).all()
    seg[15:25, 15:25, 15:25] = 0
    assert (clean_semantic(seg)[1:5, 1:5, 1:5] == 26).all()
    off = CleaningSettings(sacrum_relative_size=0.0)
    seg[15:25, 15:25, 15:25] = 26
    assert (clean_semantic(seg, settings=off)[1:5, 1:5, 1:5] == 26).all()


def test_diagonal_neighbours_are_one_component():
    """26-connectivity: voxels touching by a corner count as one component."""
    seg = np.zeros((10, 10, 10), np.uint8)
    for i in range(4):
        seg[i, i, i] = 100
    assert (RemoveSmallComponents(4, (100,))(seg) == seg).all()
    assert (RemoveSmallComponents(4, (100,), connectivity=6)(seg) == 0).all()


def test_holes_filled_without_overwriting_other_labels():
    """The canal's hole is filled with 61 where empty; the cord inside it is kept."""
    seg = np.zeros((9, 9, 9), np.uint8)
    seg[1:8, 1:8, 1:8] = 61
    seg[3:6, 3:6, 3:6] = 0
    seg[4, 4, 4] = 60
    out = FillHoles((61,))(seg)
    assert out[4, 4, 4] == 60
    assert (out[3:6, 3:6, 3:6] != 0).all()
    assert int((out == 61).sum()) == 7**3 - 1


def test_label_not_in_fill_list_keeps_holes():
    """Arcus (41) is not filled in the reference."""
    seg = np.full((5, 5, 5), 41, np.uint8)
    seg[2, 2, 2] = 0
    assert clean_semantic(seg)[2, 2, 2] == 0


def test_bad_connectivity_rejected():
    with pytest.raises(ValueError, match="connectivity"):
        clean_semantic(np.zeros((2, 2, 2), np.uint8), settings=CleaningSettings(connectivity=4))
