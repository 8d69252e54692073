"""Held-out accuracy of the demo models on phantoms (what the model cards and tests report).

Semantic: global Dice per structure (intersections and sizes summed over subjects), predicted
from the phantom image in its stored orientation through the reference recipe (prepare,
rescale to the model grid, argmax there, nearest neighbour back to the scan), so reorientation
and resampling are part of what is measured. Instance: the model runs on the ground-truth
semantic mask through the pipeline's own centres -> cutouts -> merge (issue 4: "when the
instance model runs on ground-truth semantic masks"); vertebra Dice per ground-truth vertebra
and the vertebra count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spineps_dask.geometry import Volume, resample_to, rescale
from spineps_dask.labels import VERTEBRA_SEMANTIC

logger = logging.getLogger(__name__)

PIR = ("P", "I", "R")
STRUCTURES: dict[str, tuple[int, ...]] = {
    "vertebral_body": (49,),
    "disc": (100,),
    "canal": (61,),
    "cord": (60,),
    "posterior_elements": (41, 42, 43, 44, 45, 46, 47, 48),
    "sacrum": (26,),
    "endplate": (62,),
}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def evaluate_semantic(
    folder: str | Path,
    seeds: Sequence[int],
    *,
    threads: int = 1,
    appearance: str = "t2w",
    drawn_sac: float = 0.0,
) -> dict:
    """Global Dice per structure of the semantic model over phantoms ``seeds`` rendered with
    ``appearance`` (``"t1w"``: a contrast the demo model never trained on as such);
    ``drawn_sac``: `phantom.sample_spec`'s (1: every phantom with a random look's sac and
    cord place, as a real scan's vary)."""
    from spineps_dask.models.semantic import SemanticModel
    from spineps_dask.phantom import make_phantom, sample_spec
    from spineps_dask.pipeline.preprocess import preprocess

    model = SemanticModel.from_folder(folder, device="cpu", threads=threads)
    inter = dict.fromkeys(STRUCTURES, 0)
    size = dict.fromkeys(STRUCTURES, 0)
    seconds = 0.0
    for seed in seeds:
        ph = make_phantom(sample_spec(seed, appearance=appearance, drawn_sac=drawn_sac))
        t0 = time.time()
        prepared, _ = preprocess(ph.image)
        grid = model.predict_model_grid(prepared)
        pred = resample_to(grid, ph.image.shape, ph.image.affine, order=0).data
        seconds += time.time() - t0
        gt = ph.semantic.data
        for name, labels in STRUCTURES.items():
            p, t = np.isin(pred, labels), np.isin(gt, labels)
            inter[name] += int(np.count_nonzero(p & t))
            size[name] += int(p.sum()) + int(t.sum())
    scores = {k: round(2 * inter[k] / size[k], 4) if size[k] else None for k in STRUCTURES}
    logger.info("semantic held-out global Dice: %s", scores)
    return {
        "n_subjects": len(seeds),
        "global_dice": scores,
        "predict_seconds_per_subject": round(seconds / max(1, len(seeds)), 2),
    }


def instance_phase(model: Any, semantic: Volume) -> np.ndarray:
    """The pipeline's instance phase (`pipeline.segment`) on a mask already on the model grid."""
    from spineps_dask.pipeline.merge import merge_predictions
    from spineps_dask.pipeline.segment import (
        InstanceSpace,
        cutouts_at,
        plan_cutouts,
        predict_cutouts,
    )

    space = InstanceSpace.from_config(model.config)
    centres = plan_cutouts(semantic, space)
    cutouts = cutouts_at(np.asarray(semantic.data), centres, range(len(centres)), space)
    preds = predict_cutouts(cutouts, model)
    return merge_predictions(preds, semantic.shape, settings=space.merge_settings)


def evaluate_instance(folder: str | Path, seeds: Sequence[int], *, threads: int = 1) -> dict:
    """Vertebra Dice and count accuracy of the instance model on ground-truth semantic masks.

    Two readings per subject: the model's cutouts merged (``vertebra_dice_mean``,
    ``count_correct_fraction``) and the whole instance phase as ``segment --semantic`` runs it,
    merge + post-processing + labelling (``pipeline``), which also says how many vertebrae got
    their true anatomical name in views with a C2 or sacrum anchor.
    """
    import torch

    from spineps_dask.models.instance import InstanceModel
    from spineps_dask.phantom import make_phantom
    from spineps_dask.pipeline.segment import InstanceSpace

    torch.set_num_threads(threads)
    model = InstanceModel.from_folder(folder, device="cpu")
    spacing = model.config.resolution_range
    space = InstanceSpace.from_config(model.config)
    merged_d, pipe_d, count_ok, pipe_ok, named, named_n, details = [], [], 0, 0, 0, 0, []
    for seed in seeds:
        ph = make_phantom(seed)
        sem, inst = ph.semantic.reorient(PIR), ph.instance.reorient(PIR)
        sem_m = rescale(sem, spacing, order=0)
        merged = instance_phase(model, sem_m)
        pred = resample_to(Volume(merged, sem_m.affine), sem.shape, sem.affine, order=0).data
        min_voxels = space.merge_settings.vert_size_threshold * _voxel_ratio(sem_m, sem)
        d, n_gt, n_pred = _match(pred, inst.data, sem.data, min_voxels)
        final, anchored = _postprocess(pred, sem)
        d_pipe, _, n_pipe = _match(final, inst.data, sem.data, min_voxels)
        if anchored:
            ok, n = _named_right(final, inst.data, sem.data, min_voxels)
            named, named_n = named + ok, named_n + n
        merged_d, pipe_d = merged_d + d, pipe_d + d_pipe
        count_ok, pipe_ok = count_ok + int(n_gt == n_pred), pipe_ok + int(n_gt == n_pipe)
        details.append(
            {
                "seed": seed,
                "n_gt": n_gt,
                "n_pred": n_pred,
                "mean_dice": _mean(d),
                "n_pipeline": n_pipe,
                "mean_dice_pipeline": _mean(d_pipe),
                "anchored": anchored,
            }
        )
    n = max(1, len(seeds))
    out = {
        "n_subjects": len(seeds),
        "vertebra_dice_mean": _mean(merged_d) or 0.0,
        "count_correct_fraction": round(count_ok / n, 4),
        "pipeline": {
            "vertebra_dice_mean": _mean(pipe_d) or 0.0,
            "count_correct_fraction": round(pipe_ok / n, 4),
            "true_name_fraction_anchored": round(named / named_n, 4) if named_n else None,
            "anchored_vertebrae": named_n,
        },
        "subjects": details,
    }
    logger.info(
        "instance held-out: merged dice %s count ok %s; pipeline %s",
        out["vertebra_dice_mean"],
        out["count_correct_fraction"],
        out["pipeline"],
    )
    return out


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def _postprocess(pred: np.ndarray, sem: Volume) -> tuple[np.ndarray, bool]:
    """The pipeline's post-processing and labelling of a merged mask (P-I-R, native grid)."""
    from spineps_dask.pipeline.labeling import LabelingSettings
    from spineps_dask.pipeline.postprocess import postprocess_instances

    # The same C2-cue margin as `pipeline.segment.assemble`.
    margin = int(np.ceil(8.0 / sem.spacing[1]))
    final, labeling = postprocess_instances(
        np.asarray(pred, dtype=np.uint16),
        np.asarray(sem.data),
        settings=LabelingSettings(top_margin=margin),
    )
    return final, labeling.anchored


def _named_right(
    pred: np.ndarray, gt_inst: np.ndarray, gt_sem: np.ndarray, min_voxels: float
) -> tuple[int, int]:
    """(GT vertebrae whose best-overlapping prediction carries the same id, GT vertebrae)."""
    mask = np.isin(gt_sem, VERTEBRA_SEMANTIC)
    gt = np.where(mask & (gt_inst < 100) & (gt_inst != 26), gt_inst, 0)
    ids, counts = np.unique(gt[gt > 0], return_counts=True)
    ok = 0
    for v in ids[counts >= min_voxels]:
        hits, n = np.unique(pred[gt == v], return_counts=True)
        n, hits = n[hits > 0], hits[hits > 0]
        ok += int(len(hits) > 0 and hits[np.argmax(n)] == v)
    return ok, int((counts >= min_voxels).sum())


def _voxel_ratio(model_space: Volume, native: Volume) -> float:
    return float(np.prod(model_space.spacing) / np.prod(native.spacing))


def _match(
    pred: np.ndarray, gt_inst: np.ndarray, gt_sem: np.ndarray, min_voxels: float
) -> tuple[list[float], int, int]:
    """Per GT vertebra, Dice with its best-overlapping prediction (inside the vertebra mask)."""
    mask = np.isin(gt_sem, VERTEBRA_SEMANTIC)
    gt = np.where(mask & (gt_inst < 100) & (gt_inst != 26), gt_inst, 0)
    pred = np.where(mask, pred, 0)
    ids, counts = np.unique(gt[gt > 0], return_counts=True)
    gt_ids = ids[counts >= min_voxels]
    _, p_counts = np.unique(pred[pred > 0], return_counts=True)
    n_pred = int((p_counts >= min_voxels).sum())
    scores = []
    for v in gt_ids:
        g = gt == v
        hits, n = np.unique(pred[g], return_counts=True)
        n, hits = n[hits > 0], hits[hits > 0]
        scores.append(dice(g, pred == hits[np.argmax(n)]) if len(hits) else 0.0)
    return scores, len(gt_ids), n_pred


def evaluate_real_samples(
    semantic_folder: str | Path | None, instance_folder: str | Path
) -> dict | None:
    """The demo models on the real crops the ``tptbox`` wheel ships (issue 4, item 5).

    Instance phase alone on the real semantic masks (``seg-subreg`` -> ``seg-vert``) of the T2w
    MRI (ids 5-7; anatomically thoracolumbar) and the CT (L2-L4) crop; with
    ``semantic_folder``, also both phases on the real T2w image: how far training on phantoms
    carries. ``None`` when tptbox (a test extra) is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("TPTBox") is None:
        return None
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.models.instance import InstanceModel
    from spineps_dask.models.semantic import SemanticModel
    from spineps_dask.pipeline.segment import segment

    inst_m = InstanceModel.from_folder(instance_folder, device="cpu")
    sem_m = SemanticModel.from_folder(semantic_folder, device="cpu") if semantic_folder else None
    out: dict[str, Any] = {}
    for folder in ("sample_mri", "sample_ct"):
        files = real_crop_files(folder)
        res, sem, vert = instance_phase_on_real_masks(folder, inst_m, files=files)
        out[f"{folder}: instance phase on the real semantic mask"] = _real_scores(
            res, sem, vert, levels=("instance",)
        )
        if "image" in files and sem_m is not None:
            res = segment(load_volume(files["image"]), sem_m, inst_m, n4=False, subject=folder)
            out[f"{folder}: both phases on the real T2w image"] = _real_scores(
                res, sem, vert, levels=("global", "instance")
            )
    return out


def instance_phase_on_real_masks(
    folder: str, instance_model: Any, *, files: dict[str, Path] | None = None
) -> tuple[Any, Volume, Volume]:
    """The instance phase alone (`segment` given the semantic mask) on one real crop's true
    semantic mask; returns the result and the crop's true semantic and instance masks.
    ``files``: the crop's `real_crop_files`, where the caller has listed them already."""
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.pipeline.segment import segment

    files = files or real_crop_files(folder)
    sem, vert = load_volume(files["subreg"]), load_volume(files["vert"])
    sem = sem.with_data(sem.data.astype(np.uint8))
    vert = vert.with_data(vert.data.astype(np.uint16))
    # The instance phase needs an image only for the scan check and crop; any non-empty one.
    image = sem.with_data((sem.data > 0).astype(np.float32) * 1000 + 1)
    res = segment(image, None, instance_model, n4=False, semantic=sem, subject=folder)
    return res, sem, vert


def real_crop_files(folder: str) -> dict[str, Path]:
    """The files of one real crop the ``tptbox`` wheel ships (``"sample_mri"``, ``"sample_ct"``)
    by kind: ``subreg`` (semantic) and ``vert`` (instance) masks, and ``image`` where the crop
    has its T2w scan (the MRI)."""
    import importlib.resources

    kinds = {"subreg": "seg-subreg", "vert": "seg-vert", "image": "_T2w.nii.gz"}
    base = importlib.resources.files("TPTBox") / "tests" / folder
    paths = sorted(Path(str(p)) for p in base.iterdir())
    found = {}
    for kind, key in kinds.items():
        matches = [p for p in paths if key in p.name]
        if matches:
            found[kind] = matches[0]
    return found


def real_crop_table(res: Any, sem: Volume, vert: Volume, subject: str) -> Any:
    """The metric table (`metrics.tables.evaluate_subject`) of a result on a real crop
    against the crop's true semantic and instance masks."""
    from spineps_dask.metrics.tables import evaluate_subject

    return evaluate_subject(
        res.semantic.data,
        res.instance.data,
        sem.data,
        vert.data,
        spacing=sem.spacing,
        subject=subject,
    )


def _real_scores(
    res: Any, sem: Volume, vert: Volume, *, levels: tuple[str, ...]
) -> dict[str, float]:
    """DSC (and vertebra PQ) per structure, ``level/structure/metric`` keys."""
    df = real_crop_table(res, sem, vert, "tptbox")
    keep = df.level.isin(levels) & (
        (df.metric == "DSC") | ((df.metric == "PQ") & (df.structure == "vertebra"))
    )
    return {
        f"{r.level}/{r.structure}/{r.metric}": round(float(r.value), 4)
        for r in df[keep].itertuples()
    }
