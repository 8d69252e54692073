"""Pictures people would rather look at than read: subject snapshots and cohort plots."""

from spineps_dask.viz.snapshot import label_colors, render_snapshot

__all__ = ["label_colors", "render_snapshot"]
