"""Phantom appearance (issue 17): T2w unchanged by default, a T1w contrast, randomised looks."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.labels import Semantic
from spineps_dask.phantom import make_phantom
from spineps_dask.phantom.appearance import look


def _median(ph, label: int) -> float:
    return float(np.median(ph.image.data[ph.semantic.data == label]))


def test_t1w_inverts_csf_against_cord_and_marrow():
    """T1w: CSF darker than the cord and than the vertebral bodies (T2w: brighter)."""
    t2 = make_phantom(3, region="lumbar")
    t1 = make_phantom(3, region="lumbar", appearance="t1w")
    assert _median(t2, Semantic.CANAL) > _median(t2, Semantic.CORPUS)
    assert _median(t1, Semantic.CANAL) < _median(t1, Semantic.CORD)
    assert _median(t1, Semantic.CANAL) < _median(t1, Semantic.CORPUS)
    np.testing.assert_array_equal(t1.semantic.data, t2.semantic.data)  # same anatomy


def test_random_appearance_is_seeded_and_varies_between_seeds():
    """A random look is the seed's: rebuilt identically, and different for another seed."""
    a = look("random", np.random.default_rng([1, 13]))
    b = look("random", np.random.default_rng([1, 13]))
    c = look("random", np.random.default_rng([2, 13]))
    np.testing.assert_array_equal(a.lut, b.lut)
    assert not np.array_equal(a.lut, c.lut)


def test_random_phantom_keeps_the_labels_and_is_finite():
    """Randomising the look never touches the ground truth; the image is finite, >= 0."""
    t2 = make_phantom(5, region="cervical")
    rnd = make_phantom(5, region="cervical", appearance="random")
    np.testing.assert_array_equal(rnd.semantic.data, t2.semantic.data)
    assert np.isfinite(rnd.image.data).all() and rnd.image.data.min() >= 0
    assert not np.allclose(rnd.image.data, t2.image.data)


def test_unknown_appearance_is_refused():
    with pytest.raises(InputError, match="appearance"):
        make_phantom(1, appearance="flair")
