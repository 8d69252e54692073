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


def test_snapshot_has_a_legend_and_readable_vertebra_names():
    """Issue 21 item 13: the semantic overlay has a legend naming its structures, and the
    vertebra names on a lumbar view are bold, outlined and at least 10 pt."""
    from spineps_dask.viz.snapshot import snapshot_figure

    ph = make_phantom(3, region="lumbar", spacing=(1.0, 1.0, 3.0), orientation=("L", "P", "S"))
    fig = snapshot_figure(ph.image, ph.semantic, ph.instance, title="sub-x")
    (legend,) = fig.legends
    names = {t.get_text() for t in legend.get_texts()}
    assert {"Vertebra Corpus", "Spinal Canal"} <= names
    labels = [t for t in fig.axes[2].texts]
    assert {"L1", "L2", "L3"} <= {t.get_text() for t in labels}
    assert all(t.get_fontsize() >= 10 and t.get_fontweight() == "bold" for t in labels)
