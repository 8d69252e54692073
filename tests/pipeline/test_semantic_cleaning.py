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
    seg[:, 0, 0] = 61  # a canal beside both: placed like a sacrum (drop_misplaced_sacrum)
    seg[1:5, 1:5, 1:5] = 26  # 64 voxels
    seg[15:25, 15:25, 15:25] = 26  # 1000 voxels
    seg[:, 14, 14] = 61
    out = clean_semantic(seg)
    assert (out[1:5, 1:5, 1:5] == 0).all() and (out[15:25, 15:25, 15:25] == 26).all()
    seg[15:25, 15:25, 15:25] = 0
    assert (clean_semantic(seg)[1:5, 1:5, 1:5] == 26).all()
    off = CleaningSettings(sacrum_relative_size=0.0)
    seg[15:25, 15:25, 15:25] = 26
    assert (clean_semantic(seg, settings=off)[1:5, 1:5, 1:5] == 26).all()


def test_sacrum_away_from_canal_and_discs_or_above_the_spine_removed():
    """A "sacrum" with no canal, cord or disc within 2 voxels goes (seen at the lower edge of
    cervical views); one next to the canal stays, unless its centre lies above the centre of
    the vertebral bodies (seen at the skull base), which ``down`` lets the cleaning tell."""
    seg = np.zeros((10, 60, 10), np.uint8)  # axis 1 inferior
    seg[2:4, :, 4:6] = 61  # canal, full height
    seg[4:8, 20:26, 2:8] = 49  # vertebral body voxels, centre row 22.5
    seg[4:8, 2:8, 2:8] = 26  # beside the canal, above the body: skull base
    seg[4:8, 40:50, 2:8] = 26  # beside the canal, below the body: a sacrum
    seg[6:9, 55:59, 6:9] = 26  # far from canal and discs
    out = clean_semantic(seg, down=(1, 1))
    assert (out[4:8, 2:8, 2:8] == 0).all()
    assert (out[4:8, 40:50, 2:8] == 26).all()
    assert (out[6:9, 55:59, 6:9] == 0).all()
    assert (clean_semantic(seg)[4:8, 2:8, 2:8] == 26).all()  # no axis: position unknown
    flipped = clean_semantic(seg[:, ::-1], down=(1, -1))[:, ::-1]  # index grows upwards
    assert (flipped == out).all()
    off = CleaningSettings(sacrum_position=False)
    assert (clean_semantic(seg, settings=off, down=(1, 1))[6:9, 55:59, 6:9] == 26).all()


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
