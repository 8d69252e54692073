"""Pictures people would rather look at than read: subject snapshots and cohort plots."""

from spineps_dask.viz.cohort import (
    figure_png,
    level_order,
    plot_level_biomarkers,
    plot_metric_boxes,
    plot_status,
)
from spineps_dask.viz.snapshot import label_colors, render_snapshot

__all__ = [
    "figure_png",
    "label_colors",
    "level_order",
    "plot_level_biomarkers",
    "plot_metric_boxes",
    "plot_status",
    "render_snapshot",
]
