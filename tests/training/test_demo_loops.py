"""Semantic training batches: the field-of-view normalisation of issue 17."""

import numpy as np

from spineps_dask.training.demo_data import Case
from spineps_dask.training.demo_loops import semantic_batches


def _case(offset: float) -> Case:
    rng = np.random.default_rng(0)
    data = (offset + rng.normal(0, 2.0, (1, 20, 24, 16))).astype(np.float32)
    seg = np.zeros((1, 20, 24, 16), np.int8)
    seg[0, 5:15, 6:18, 4:12] = 1
    return Case(data, seg, np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint16))


def test_patch_norm_z_scores_patches_on_their_own():
    """With patch_norm=1 every patch is z-scored before the brightness jitter (mean near 0,
    spread 0.8-1.25 sd), so the network sees tissues where a tight crop puts them; with 0 the
    case's own normalisation is kept (a patch of a case at +5 stays near +5)."""
    cases = [_case(5.0)]
    rng = np.random.default_rng(1)
    normed = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=1.0)
    kept = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.0)
    for _ in range(5):
        x, y = normed(rng)
        assert x.shape == (4, 1, 8, 8, 8) and y.shape == (4, 8, 8, 8)
        per_patch = x.flatten(1)
        assert per_patch.mean(1).abs().max() < 0.5
        assert ((per_patch.std(1) > 0.7) & (per_patch.std(1) < 1.4)).all()
        x, _ = kept(rng)
        assert x.flatten(1).mean(1).min() > 3.0
