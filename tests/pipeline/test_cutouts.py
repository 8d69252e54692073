"""Vertebral-body centres, cutouts and training targets on tiny synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.labels import Semantic
from spineps_dask.pipeline.cutouts import (
    CentreSettings,
    crop_padded,
    cutout_targets,
    find_centres,
    make_cutouts,
    map_labels,
)

CORPUS = int(Semantic.CORPUS)


def _two_fused_bodies(bridge: int) -> np.ndarray:
    """Two 12x10x12 bodies stacked along axis 1 (inferior), joined by a bridge `bridge` thick."""
    sem = np.zeros((16, 40, 16), np.uint8)
    sem[2:14, 4:14, 2:14] = CORPUS  # upper body (smaller axis-1 index)
    sem[2:14, 18:30, 2:14] = CORPUS  # lower body, a little taller
    lo, hi = 8 - bridge // 2, 8 - bridge // 2 + bridge
    sem[lo:hi, 14:18, lo:hi] = CORPUS
    return sem


@pytest.mark.parametrize("bridge", [0, 2, 6, 8])
def test_fused_bodies_split_into_two_centres_bottom_first(bridge):
    """Touching bodies (thin or thick bridge) give two centres, the lower body first."""
    centres = find_centres(_two_fused_bodies(bridge))
    assert centres.shape == (2, 3)
    assert centres[0, 1] == pytest.approx(23.5, abs=1.5)  # lower body, rows 18..29
    assert centres[1, 1] == pytest.approx(8.5, abs=1.5)  # upper body, rows 4..13
    assert np.allclose(centres[:, [0, 2]], 7.5, atol=0.5)


def test_single_compact_body_is_not_split():
    """A plain block stays one body even though erosion shrinks it repeatedly."""
    sem = np.zeros((16, 20, 16), np.uint8)
    sem[2:14, 4:16, 2:14] = CORPUS
    assert find_centres(sem).shape == (1, 3)


def test_small_components_are_dropped():
    """Bodies under corpus_size_cleaning voxels (after the 2-voxel erosion) are no centres."""
    sem = np.zeros((16, 20, 16), np.uint8)
    sem[2:9, 2:9, 2:9] = CORPUS  # 3^3 = 27 voxels after erosion
    assert find_centres(sem).shape == (0, 3)
    assert find_centres(sem, settings=CentreSettings(corpus_size_cleaning=20)).shape == (1, 3)


def test_label_mapping_matches_reference():
    """41..48 -> 1..8, 49/50 -> 9, sacrum and everything else -> 0, dtype uint8."""
    sem = np.array([41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 26, 60, 61, 62, 100, 0])
    out = map_labels(sem)
    assert out.dtype == np.uint8
    assert out.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 0, 0, 0, 0, 0, 0]


def test_cutout_at_border_is_zero_padded_with_negative_origin():
    """A centre near the corner gives origin = centre - size//2 and zeros outside the volume."""
    sem = np.full((10, 10, 10), CORPUS, np.uint8)
    (cut,) = make_cutouts(sem, [(1, 2, 3)], size=(8, 8, 8), subject="sub-1")
    assert cut.origin == (-3, -2, -1)
    assert cut.centre == (1, 2, 3)
    assert cut.array.dtype == np.uint8 and cut.array.shape == (8, 8, 8)
    assert (cut.array[:3] == 0).all() and (cut.array[:, :2] == 0).all()
    assert (cut.array[:, :, :1] == 0).all()
    assert (cut.array[3:, 2:, 1:] == 9).all()
    assert cut.subject == "sub-1" and cut.index == 0


def test_cutout_indices_follow_centre_order_and_content_matches_volume():
    """Cutout i holds the mapped semantic values at volume index origin + j."""
    rng = np.random.default_rng(0)
    sem = rng.choice([0, 41, 49, 26], size=(12, 14, 9)).astype(np.uint8)
    cuts = make_cutouts(sem, [(6, 10, 4), (6, 3, 4)], size=(4, 6, 4))
    assert [c.index for c in cuts] == [0, 1]
    mapped = map_labels(sem)
    for c in cuts:
        o = c.origin
        assert np.array_equal(c.array, mapped[o[0] : o[0] + 4, o[1] : o[1] + 6, o[2] : o[2] + 4])


def test_crop_outside_volume_is_all_fill():
    """A window that misses the volume entirely is all padding."""
    assert (crop_padded(np.ones((3, 3, 3)), (5, 0, 0), (2, 2, 2)) == 0).all()


def test_cutout_targets_above_centre_below():
    """Targets name the nearest present neighbours, skip IVDs/endplates, handle T12 -> T13 -> L1."""
    gt = np.array([[[18, 19, 28, 20, 119, 219, 0]]])
    assert cutout_targets(gt, 28).tolist() == [[[0, 1, 2, 3, 0, 0, 0]]]
    # L1 missing: the vertebra below T12 is L2.
    gt = np.array([[[18, 19, 21, 26]]])
    assert cutout_targets(gt, 19).tolist() == [[[1, 2, 3, 0]]]
    with pytest.raises(ValueError, match="not a vertebra"):
        cutout_targets(gt, 119)


def test_bodies_fused_over_full_width_are_cut_by_height():
    """A column twice the typical body height (no waist at all) gives two centres."""
    sem = np.zeros((16, 80, 16), np.uint8)
    for start in (2, 18, 34):
        sem[2:14, start : start + 12, 2:14] = CORPUS  # three normal bodies, gaps of 4 rows
    sem[2:14, 50:78, 2:14] = CORPUS  # two bodies fused over the full width: 28 rows
    centres = find_centres(sem)
    assert centres.shape == (5, 3)
    assert np.allclose(centres[:2, 1], [70.5, 56.5], atol=1.5)  # bottom first
    assert np.all(np.diff(centres[:, 1]) < 0)


def test_single_tall_body_alone_is_not_cut():
    """Without other bodies there is no typical height, so nothing is cut."""
    sem = np.zeros((16, 40, 16), np.uint8)
    sem[2:14, 2:38, 2:14] = CORPUS
    assert find_centres(sem).shape == (1, 3)


def test_inferior_axis_is_taken_from_the_caller():
    """With the spine along axis 2 (inferior_axis=2), centres are ordered along axis 2."""
    sem = np.moveaxis(_two_fused_bodies(0), 1, 2)
    centres = find_centres(sem, settings=CentreSettings(inferior_axis=2))
    assert centres.shape == (2, 3)
    assert centres[0, 2] > centres[1, 2]
