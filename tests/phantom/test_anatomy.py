"""Textbook vertebra dimensions of the phantoms (`phantom.anatomy.anchor_dims`) and the set
conus (`cord_scale`)."""

import numpy as np
import pytest

from spineps_dask.labels import VERTEBRA_IDS
from spineps_dask.phantom.anatomy import anchor_dims, cord_scale


def test_anchor_levels_keep_their_table_values():
    """At an anchor level the dimensions are the table's (L1 32 x 44 mm, 26 mm tall): what
    benchmarks/real_crop_anatomy.py prints beside the real crop."""
    l1 = anchor_dims(VERTEBRA_IDS["L1"])
    assert (l1["depth"], l1["width"], l1["height"]) == (32.0, 44.0, 26.0)


def test_t13_is_shaped_halfway_between_t12_and_l1():
    """A T13 has no shape of its own (RESULTS, vertebra naming): every dimension is the mean
    of T12's and L1's."""
    t12, t13, l1 = (anchor_dims(VERTEBRA_IDS[n]) for n in ("T12", "T13", "L1"))
    for name, value in t13.items():
        assert value == pytest.approx((t12[name] + l1[name]) / 2), name


def test_cord_scale_is_whole_above_the_taper_and_ends_at_the_conus():
    """A set conus (end 100 mm, taper 20 mm) keeps the whole cord above 80 mm, narrows it
    steadily (a square-root, rounded tip) to nothing at 100 mm, and none is left below."""
    s = np.array([50.0, 80.0, 85.0, 95.0, 99.0, 100.0, 130.0])
    k = cord_scale(s, (100.0, 20.0))
    np.testing.assert_allclose(k[:2], 1.0)
    assert (np.diff(k[1:6]) < 0).all() and k[5] == 0.0 and k[6] == 0.0
    assert k[3] == pytest.approx(np.sqrt(0.25))
