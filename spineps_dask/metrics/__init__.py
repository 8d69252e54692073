"""Evaluation metrics: Dice, ASSD, panoptic quality, tidy tables and paired statistics.

Plain functions on numpy arrays; :mod:`.tables` builds one tidy row per subject x structure x
metric, :mod:`.stats` compares two runs over subjects (Wilcoxon signed-rank, as in the paper).
"""

from spineps_dask.metrics.overlap import dice, dice_per_label, iou
from spineps_dask.metrics.panoptic import PanopticResult, match_instances, panoptic_quality
from spineps_dask.metrics.surface import assd, assd_per_label

__all__ = [
    "PanopticResult",
    "assd",
    "assd_per_label",
    "dice",
    "dice_per_label",
    "iou",
    "match_instances",
    "panoptic_quality",
]
