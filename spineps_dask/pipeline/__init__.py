"""The SPINEPS method as plain NumPy steps: no dask, no file I/O, no torch.

Each module is one step (cutouts, merge, cleaning, post-processing, labelling, input check,
preprocessing); models are called by the caller between the steps. One subject, in order::

    check_scan(scan)                                   # InputError if unusable
    prep, record = preprocess(scan)                    # crop, (N4), 0..1500, pad 4
    # caller: reorient prep to P-I-R, resample, run the semantic model -> sem (P, I, R)
    sem = clean_semantic(sem)
    cutouts = make_cutouts(sem, find_centres(sem), size=cutout_size, subject=sid)
    # caller: classes = instance_model(one_hot(cutout.array)) for each cutout (any order)
    preds = [CutoutPrediction.from_cutout(c, classes) for c, classes in ...]
    merged = merge_predictions(preds, sem.shape)       # vertebrae 1..N top -> bottom
    instance, labeling = postprocess_instances(merged, sem)
    points = centroids(instance, affine=affine_of_sem)
    # caller: back to the input space, then undo_crop_pad(instance_volume, record)
    patches = vertebra_patches(scan, instance_volume, semantic_volume)   # labelling input
    # caller: posteriors = labeling_model.predict(patches.patches)
    naming = model_naming(patches.ids, posteriors, anchors=rule_anchors(...)[0])
    instance = rename(instance, naming.mapping)        # vertebrae, discs, endplates
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
from spineps_dask.pipeline.naming import (
    Naming,
    NamingSettings,
    model_naming,
    rename,
    rule_anchors,
    rule_naming,
)
from spineps_dask.pipeline.patches import PatchSettings, VertebraPatches, vertebra_patches
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
from spineps_dask.pipeline.sequence import SequenceSettings, best_sequence

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
    "Naming",
    "NamingSettings",
    "PatchSettings",
    "PreprocessSettings",
    "RemoveSmallComponents",
    "SequenceSettings",
    "VertebraPatches",
    "add_sacrum",
    "assign_leftovers",
    "attach_discs_endplates",
    "best_sequence",
    "centroids",
    "check_scan",
    "clean_semantic",
    "cutout_targets",
    "find_centres",
    "label_vertebrae",
    "make_cutouts",
    "map_labels",
    "merge_predictions",
    "model_naming",
    "n4_correct",
    "normalize_intensity",
    "postprocess_instances",
    "preprocess",
    "relabel",
    "remove_outside_spine",
    "rename",
    "rule_anchors",
    "rule_naming",
    "undo_crop_pad",
    "vertebra_patches",
]
