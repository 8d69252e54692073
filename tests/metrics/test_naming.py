"""Which reference vertebrae carry their true name (`metrics.naming`)."""

import numpy as np

from spineps_dask.metrics.naming import named_right


def test_a_vertebra_the_segmentation_missed_is_not_found_and_not_right():
    """L1 (20) named right, L2 (21) named L3, L3 (22) covered by nothing: right, wrong,
    missed (None); the sacrum (26) and discs are not scored."""
    ref = np.zeros((4, 4, 4), np.uint16)
    ref[0], ref[1], ref[2], ref[3, :2] = 20, 21, 22, 26
    ref[3, 2:] = 120
    pred = np.zeros_like(ref)
    pred[0], pred[1] = 20, 22
    pred[3] = 26
    assert named_right(pred, ref) == {20: True, 21: False, 22: None}


def test_min_voxels_leaves_out_slivers_at_the_edge_of_the_view():
    """A vertebra with fewer voxels in view than ``min_voxels`` (T12, 3 voxels, absorbed by
    L1) is not scored; L1, with 8, is."""
    ref = np.zeros((2, 2, 3), np.uint16)
    ref[:, :, 0] = 19
    ref[0, 0, 0] = 0
    ref[:, :, 1:] = 20
    pred = np.full_like(ref, 20)
    assert named_right(pred, ref) == {19: False, 20: True}
    assert named_right(pred, ref, min_voxels=4) == {20: True}
