"""Reference mode: `spineps` 2.1.3's semantic cleaning and instance phase, stage for stage.

The fixtures in ``data/reference_instance`` were captured from `spineps` 2.1.3 itself
(`benchmarks/fidelity.py --fixtures`, the shipped demo models, a whole-spine phantom and the
tptbox real crop): its raw and cleaned model-grid masks, its instance grid, its cutout
centres, the instance model's answer for each cutout and its merged vertebrae. Our reference
mode must give the same arrays from the same inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.pipeline.cutouts import DEFAULT_MAPPING
from spineps_dask.pipeline.merge import CutoutPrediction
from spineps_dask.pipeline.reference import instance_phase as ri
from spineps_dask.pipeline.semantic_cleaning import (
    CleaningSettings,
    clean_semantic,
    keep_bbox_chain,
)

FIXTURES = sorted((Path(__file__).parent / "data" / "reference_instance").glob("*.npz"))


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_cleaning_equals_spineps(path: Path) -> None:
    """The model-grid mask cleaned as spineps cleans it: every voxel equal."""
    f = _load(path)
    zoom = tuple(float(z) for z in f["semantic_zoom"])
    settings = CleaningSettings.reference(zoom)
    ours = clean_semantic(f["raw"], settings=settings, down=(1, 1))
    np.testing.assert_array_equal(ours, f["clean"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_cutout_centres_equal_spineps(path: Path) -> None:
    """Body centres found, moved into the mask and truncated as spineps does: same list, same
    order (bottom to top)."""
    f = _load(path)
    zoom = tuple(float(z) for z in f["inst_zoom"])
    corpus, vertebra = (float(v) for v in f["sizes"])
    sizes = ri.ReferenceSizes.from_config(corpus, vertebra, resolution=f["resolution"], zoom=zoom)
    centres = ri.plan(f["inst_grid"], mapping=DEFAULT_MAPPING, sizes=sizes, zoom=zoom)
    np.testing.assert_array_equal(centres, f["cutout_centres"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_merge_equals_spineps(path: Path) -> None:
    """The instance model's answers merged as spineps merges them: same vertebra ids on every
    voxel of the grid."""
    f = _load(path)
    zoom = tuple(float(z) for z in f["inst_zoom"])
    corpus, vertebra = (float(v) for v in f["sizes"])
    sizes = ri.ReferenceSizes.from_config(corpus, vertebra, resolution=f["resolution"], zoom=zoom)
    half = f["cutout_size"] // 2
    preds = [
        CutoutPrediction(i, tuple(int(v) for v in c - half), p)
        for i, (c, p) in enumerate(zip(f["cutout_centres"], f["inst_pred"], strict=True))
    ]
    merged = ri.merge(preds, f["inst_grid"].shape, vertebra_size=sizes.vertebra)
    np.testing.assert_array_equal(merged, f["merged"])


def test_fixtures_are_present() -> None:
    """The captured fixtures ship with the tests (a whole spine and the real crop)."""
    assert len(FIXTURES) >= 2


def test_sizes_follow_the_reference_scaling() -> None:
    """Config values are scaled by the model's voxel volume, divided by the grid's, floored at
    40 reference voxels' volume: 100 / 250 on the model's own grid, more on a finer one."""
    s = ri.ReferenceSizes.from_config(100, 250, resolution=(2.0, 2.0, 3.0), zoom=(2.0, 2.0, 3.0))
    assert (s.corpus, s.vertebra) == (100, 250)
    fine = ri.ReferenceSizes.from_config(100, 250, resolution=(2.0, 2.0, 3.0), zoom=(1, 1, 1.5))
    assert (fine.corpus, fine.vertebra) == (800, 2000)


def test_centre_outside_the_mask_moves_down_five_voxels() -> None:
    """A centre on background steps 5 voxels inferior until it is inside; past the grid it
    stays where it was; coordinates are truncated, not rounded."""
    mapped = np.zeros((3, 20, 3), np.uint8)
    mapped[1, 12, 1] = 9
    assert ri.cutout_centres(mapped, [(1.9, 2.6, 1.2)]).tolist() == [[1, 12, 1]]
    assert ri.cutout_centres(mapped, [(1.0, 3.0, 1.0)]).tolist() == [[1, 3, 1]]


def test_no_body_left_fails_as_spineps_does() -> None:
    """All eroded bodies under the size limit: the subject fails with a clear message."""
    seg = np.zeros((12, 12, 12), np.uint8)
    seg[4:8, 4:8, 4:8] = 49
    sizes = ri.ReferenceSizes(corpus=100, vertebra=250)
    with pytest.raises(InputError, match="no vertebral body is left"):
        ri.plan(seg, mapping=DEFAULT_MAPPING, sizes=sizes, zoom=(2.0, 2.0, 3.0))


def test_bbox_chain_joins_structures_below_within_margin() -> None:
    """A disc just below the chain joins; a speck far away (another box) goes, even if it
    lies on the same line."""
    seg = np.zeros((6, 30, 6), np.uint8)
    seg[1:5, 2:10, 1:5] = 49
    seg[1:5, 11:13, 1:5] = 100
    seg[2, 25, 2] = 26
    out = keep_bbox_chain(seg, margin=0, inferior_margin=1)
    assert (out[:, :13] == seg[:, :13]).all()
    assert out[2, 25, 2] == 0
