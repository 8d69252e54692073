"""Snapshots render for any mask dtype and orientation and name the vertebrae."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.phantom import make_phantom
from spineps_dask.viz.snapshot import render_snapshot


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_snapshot_is_a_png_for_any_label_dtype(dtype):
    ph = make_phantom(3, region="lumbar", spacing=(1.0, 1.0, 3.0), orientation=("L", "P", "S"))
    png = render_snapshot(
        ph.image,
        ph.semantic.with_data(ph.semantic.data.astype(dtype)),
        ph.instance.with_data(ph.instance.data.astype(dtype)),
        title="sub-x",
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000
