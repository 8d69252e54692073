"""The SPINEPS method as plain NumPy steps: no dask, no file I/O, no torch.

Each module is one step (cutouts, merge, cleaning, post-processing, labelling, input check,
preprocessing); models are called by the caller between the steps.
"""

from spineps_dask.pipeline.check import CheckSettings, check_scan
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
from spineps_dask.pipeline.labeling import (
    Labeling,
    LabelingSettings,
    centroids,
    label_vertebrae,
    relabel,
)
from spineps_dask.pipeline.merge import CutoutPrediction, MergeSettings, merge_predictions
from spineps_dask.pipeline.postprocess import (
    add_sacrum,
    assign_leftovers,
    attach_discs_endplates,
    postprocess_instances,
    remove_outside_spine,
)
from spineps_dask.pipeline.preprocess import (
    CropRecord,
    PreprocessSettings,
    n4_correct,
    normalize_intensity,
    preprocess,
    undo_crop_pad,
)
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
    "CheckSettings",
    "CleaningSettings",
    "CropRecord",
    "Cutout",
    "CutoutPrediction",
    "FillHoles",
    "Labeling",
    "LabelingSettings",
    "MergeSettings",
    "PreprocessSettings",
    "RemoveSmallComponents",
    "add_sacrum",
    "assign_leftovers",
    "attach_discs_endplates",
    "centroids",
    "check_scan",
    "clean_semantic",
    "cutout_targets",
    "find_centres",
    "label_vertebrae",
    "make_cutouts",
    "map_labels",
    "merge_predictions",
    "n4_correct",
    "normalize_intensity",
    "postprocess_instances",
    "preprocess",
    "relabel",
    "remove_outside_spine",
    "undo_crop_pad",
]
