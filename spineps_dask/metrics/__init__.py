"""Evaluation metrics: Dice, ASSD, panoptic quality, tidy tables and paired statistics.

Plain functions on numpy arrays; :mod:`.tables` builds one tidy row per subject x structure x
level x metric, :mod:`.stats` compares two runs over subjects (Wilcoxon signed-rank, as in the
paper). No file I/O here: `spineps_dask.evaluate` scores folders of masks, `spineps_dask.io.tables`
writes the tables.
"""

from spineps_dask.metrics.overlap import dice, dice_per_label, iou
from spineps_dask.metrics.panoptic import PanopticResult, match_instances, panoptic_quality
from spineps_dask.metrics.stats import compare_runs, wilcoxon_paired
from spineps_dask.metrics.surface import assd, assd_per_label
from spineps_dask.metrics.tables import (
    evaluate_subject,
    summarize,
    summary_markdown,
)

__all__ = [
    "PanopticResult",
    "assd",
    "assd_per_label",
    "compare_runs",
    "dice",
    "dice_per_label",
    "evaluate_subject",
    "iou",
    "match_instances",
    "panoptic_quality",
    "summarize",
    "summary_markdown",
    "wilcoxon_paired",
]
