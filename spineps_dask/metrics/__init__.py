"""Evaluation metrics: Dice, ASSD, panoptic quality, tidy tables and paired statistics.

Plain functions on numpy arrays; :mod:`.tables` builds one tidy row per subject x structure x
level x metric, :mod:`.stats` compares two runs over subjects (Wilcoxon signed-rank, as in the
paper), :mod:`.folders` evaluates folders of BIDS-named masks (the ``eval`` command).
"""

from spineps_dask.metrics.overlap import dice, dice_per_label, iou
from spineps_dask.metrics.panoptic import PanopticResult, match_instances, panoptic_quality
from spineps_dask.metrics.stats import compare_runs, wilcoxon_paired
from spineps_dask.metrics.surface import assd, assd_per_label
from spineps_dask.metrics.tables import (
    evaluate_subject,
    read_table,
    summarize,
    summary_markdown,
    write_table,
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
    "read_table",
    "summarize",
    "summary_markdown",
    "wilcoxon_paired",
    "write_table",
]
