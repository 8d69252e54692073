"""Per-patch looks (`training.patch_looks`, issue 17): a fresh appearance from the labels."""

import numpy as np

from spineps_dask.training.patch_looks import redraw_look


def _patch() -> tuple[np.ndarray, np.ndarray]:
    """A bright tube (class 3) in darker tissue, with a strip outside the scan (-1)."""
    rng = np.random.default_rng(0)
    seg = np.zeros((1, 16, 24, 12), np.int8)
    seg[0, 4:12, 6:18, 3:9] = 3
    seg[0, :, :2] = -1
    x = np.where(seg == 3, 2.0, -0.5) + rng.normal(0, 0.1, seg.shape)
    return x.astype(np.float32), seg


def test_a_redrawn_patch_is_z_scored_float32_of_the_same_shape():
    """The network reads it as it reads a z-scored scan."""
    x, seg = _patch()
    y = redraw_look(x, seg, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(float(y.mean())) < 1e-4 and abs(float(y.std()) - 1.0) < 1e-3


def test_the_same_draw_gives_the_same_look_and_another_draw_another():
    """Seeded, so a training command repeats its patches; each draw is a new look."""
    x, seg = _patch()
    a = redraw_look(x, seg, np.random.default_rng(5))
    b = redraw_look(x, seg, np.random.default_rng(5))
    c = redraw_look(x, seg, np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_structure_is_drawn_brighter_or_darker_than_its_surroundings():
    """The tube is brighter than its surroundings in the input; across draws its contrast
    takes both signs, so no structure's place in the grey scale can be learnt."""
    x, seg = _patch()
    tube, rest = seg[0] == 3, seg[0] == 0
    contrast = []
    for k in range(40):
        y = redraw_look(x, seg, np.random.default_rng(k))[0]
        contrast.append(float(y[tube].mean() - y[rest].mean()))
    assert min(contrast) < -0.3 and max(contrast) > 0.3
