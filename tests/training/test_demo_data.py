"""Patch samplers of the demo training: the field-of-view cut of issue 17."""

import numpy as np

from spineps_dask.training.demo_data import field_of_view


def test_field_of_view_keeps_one_box_at_least_min_share_long_on_each_axis():
    """The kept voxels are one axis-aligned box (a scan's field of view), each side at least
    ``min_share`` of the patch, placed anywhere in it: the whole patch survives now and then,
    and edges land on both ends of every axis."""
    rng = np.random.default_rng(0)
    shape = (48, 96, 32)
    whole, low_cut, high_cut = 0, np.zeros(3, int), np.zeros(3, int)
    for _ in range(300):
        keep = field_of_view(shape, rng, min_share=0.35)
        idx = np.nonzero(keep)
        lo = np.array([i.min() for i in idx])
        hi = np.array([i.max() + 1 for i in idx])
        box = np.zeros(shape, bool)
        box[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
        assert (box == keep).all()
        assert ((hi - lo) >= np.round(0.35 * np.array(shape)) - 1).all()
        whole += keep.all()
        low_cut += lo > 0
        high_cut += hi < np.array(shape)
    assert 0 < whole < 100  # (1 - axis_p)^3 = 1/8 of patches keep everything
    assert (low_cut > 20).all() and (high_cut > 20).all()


def test_field_of_view_without_cuts_keeps_everything():
    """``axis_p=0`` leaves the patch whole (the sampler's off switch)."""
    keep = field_of_view((8, 9, 10), np.random.default_rng(1), axis_p=0.0)
    assert keep.shape == (8, 9, 10) and keep.all()
