"""The SPINEPS method as plain NumPy steps: no dask, no file I/O, no torch.

Each module is one step (cutouts, merge, cleaning, post-processing, labelling, input check,
preprocessing); models are called by the caller between the steps.
"""

from spineps_dask.pipeline.cutouts import (
    CUTOUT_SIZE,
    DEFAULT_MAPPING,
    CentreSettings,
    Cutout,
    cutout_targets,
    find_centres,
    make_cutouts,
    map_labels,
)
from spineps_dask.pipeline.merge import CutoutPrediction, MergeSettings, merge_predictions
from spineps_dask.pipeline.semantic_cleaning import (
    CleaningSettings,
    FillHoles,
    RemoveSmallComponents,
    clean_semantic,
)

__all__ = [
    "CUTOUT_SIZE",
    "DEFAULT_MAPPING",
    "CentreSettings",
    "CleaningSettings",
    "Cutout",
    "CutoutPrediction",
    "FillHoles",
    "MergeSettings",
    "RemoveSmallComponents",
    "clean_semantic",
    "cutout_targets",
    "find_centres",
    "make_cutouts",
    "map_labels",
    "merge_predictions",
]
