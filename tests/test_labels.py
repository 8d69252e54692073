"""The label scheme: which labels a mask may hold, and the refusal of any other."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.labels import VALID_INSTANCE, VALID_SEMANTIC, VERTEBRA_IDS, check_labels


def test_valid_sets_hold_every_structure_and_instance_kind():
    """Vertebrae, their discs (100+X) and endplates (200+X); all semantic structures."""
    l3 = VERTEBRA_IDS["L3"]
    assert {0, l3, 100 + l3, 200 + l3} <= VALID_INSTANCE
    assert {0, 26, 41, 49, 60, 61, 62, 100} <= VALID_SEMANTIC


def test_a_mask_in_another_scheme_is_refused_naming_the_labels():
    mask = np.array([[0, 20, 77]], dtype=np.uint8)
    with pytest.raises(InputError, match=r"labels \[77\] outside the SPINEPS scheme"):
        check_labels(mask, VALID_INSTANCE, what="ref.nii.gz", subject="sub-1")


def test_float_or_negative_masks_are_refused():
    with pytest.raises(InputError, match="non-negative integer labels"):
        check_labels(np.array([0.5]), VALID_SEMANTIC, what="m")
    with pytest.raises(InputError, match="non-negative integer labels"):
        check_labels(np.array([-1]), VALID_SEMANTIC, what="m")


def test_a_disc_is_titled_by_its_two_vertebrae():
    """Issue 21 item 13: ``IVD C2`` on a page reads ``C2-C3``; junctions and variants too."""
    from spineps_dask.labels import level_title

    got = [level_title(x) for x in ("IVD C2", "IVD C7", "IVD T12", "IVD T13", "IVD L5")]
    assert got == ["C2-C3", "C7-T1", "T12-L1", "T13-L1", "L5-S1"]
    assert [level_title("IVD L6"), level_title("L3"), level_title("IVD S1")] == [
        "L6-S1",
        "L3",
        "disc below S1",
    ]
