"""The pipeline's stages as store-keyed steps: read the inputs, run one stage, park the output.

The one module that calls the stage functions of `spineps_dask.pipeline.segment`: the run's
tasks (`tasks.py`) and the sweep's (`spineps_dask.sweep.tasks`) both go through here, so a
change to a stage's parameters is wired in once. Each step is told where its arrays live:
``source`` holds the ingested scan, ``work`` the arrays parked under ``names`` (the run: the
cohort store and `RUN_WORK`; a sweep: its work store and names keyed by stage settings).
Models come from the per-process cache, never from the task graph.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.distributed.outcomes import STORE_IO, Failure, Guard, StageResult, worker_name
from spineps_dask.io.names import IMAGE, WorkNames
from spineps_dask.io.store import CohortStore
from spineps_dask.models.folders import load_model_folder
from spineps_dask.pipeline.merge import MergeSettings
from spineps_dask.pipeline.naming import NamingSettings, rule_naming
from spineps_dask.pipeline.segment import (
    InstanceSpace,
    ReferenceNumbering,
    Segmentation,
    apply_naming,
    cutouts_at,
    instance_input,
    model_modality,
    name_vertebrae,
    plan_cutouts,
    predict_cutouts,
    semantic_phase,
)
from spineps_dask.pipeline.segment import assemble as assemble_masks
from spineps_dask.pipeline.segment import prepare as prepare_image


@functools.lru_cache(maxsize=8)
def instance_space(folder: str) -> InstanceSpace:
    """How the instance model in ``folder`` sees a mask (its config read once per process)."""
    return InstanceSpace.from_config(load_model_folder(folder, kind="instance").config)


@functools.lru_cache(maxsize=8)
def semantic_modality(folder: str) -> str:
    """``"CT"`` or ``"MR"``: what the semantic model in ``folder`` was trained on."""
    return model_modality(load_model_folder(folder, kind="semantic").config)


@functools.lru_cache(maxsize=8)
def reference_numbering(folder: str) -> ReferenceNumbering:
    """How the reference numbers vertebrae with the semantic model in ``folder``."""
    return ReferenceNumbering.from_config(load_model_folder(folder, kind="semantic").config)


def batch_indices(n: int, size: int) -> list[list[int]]:
    """Cutout indices 0..n-1 in batches of ``size`` (the instance tasks of one subject)."""
    size = max(1, size)
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def prepare(
    source: CohortStore,
    work: CohortStore,
    subject: str,
    names: WorkNames,
    *,
    n4: bool,
    recipe: str = "reference",
    modality: str = "MR",
) -> StageResult | Failure:
    """Read the scan, check and preprocess it (N4 or not, as ``recipe`` and the semantic
    model's ``modality`` say), park it.

    The crop record it returns carries the recipe to the later steps.
    """
    with Guard(subject, "prepare") as g:
        image = g.store(source.read_volume, subject, IMAGE)
        prepared, record = prepare_image(
            image, n4=n4, subject=subject, recipe=recipe, modality=modality
        )
        g.store(work.write_volume, subject, names.prepared, prepared)
    return g.failure or StageResult(subject, {}, {}).then("prepare", g.seconds, g.io, record=record)


def semantic(
    work: CohortStore,
    subject: str,
    prev: StageResult | Failure,
    names: WorkNames,
    models: RunConfig,
    *,
    step_size: float | None,
    folds: tuple[int | str, ...] | None = None,
    reference_mode: bool = False,
) -> StageResult | Failure:
    """Semantic model + cleaning; park the mask on both grids; plan the cutouts.

    ``step_size``, ``folds``: the semantic model's sliding-window step and folds (None: the
    model folder's defaults). ``reference_mode``: spineps 2.1.3's cleaning and centres.
    """
    if isinstance(prev, Failure):
        return prev
    with Guard(subject, "semantic", prev.timings) as g:
        prepared = g.store(work.read_volume, subject, names.prepared)
        model = model_cache.semantic_model(
            models.semantic_model, device=models.device, folds=folds, step_size=step_size
        )
        recipe = prev.record.recipe if prev.record is not None else "reference"
        sem = semantic_phase(prepared, model, recipe=recipe, reference_mode=reference_mode)
        space = instance_space(str(models.instance_model))
        inst_in = instance_input(sem, space, recipe=recipe)
        centres = plan_cutouts(inst_in, space, reference_mode=reference_mode)
        g.store(work.write_volume, subject, names.semantic, sem)
        g.store(work.write_volume, subject, names.instance_input, inst_in)
    return g.failure or prev.then("semantic", g.seconds, g.io, centres=centres)


def instance(
    work: CohortStore,
    subject: str,
    sem: StageResult | Failure,
    indices: Sequence[int],
    names: WorkNames,
    models: RunConfig,
) -> StageResult | Failure:
    """Instance model on a batch of cutouts, each read as a window of the parked mask."""
    if isinstance(sem, Failure):
        return sem
    if sem.centres is None:
        raise ValueError(f"instance step of {subject} got no cutout centres from its semantic step")
    with Guard(subject, "instance", sem.timings) as g:
        space = instance_space(str(models.instance_model))
        array = work.open_array(subject, names.instance_input)
        cutouts = g.store(cutouts_at, array, sem.centres, indices, space, subject=subject)
        model = model_cache.instance_model(models.instance_model, device=models.device)
        preds = tuple(predict_cutouts(cutouts, model))
    if g.failure:
        return g.failure
    return StageResult(
        subject,
        {"instance": g.seconds, STORE_IO: g.io},
        {"instance": worker_name()},
        predictions=preds,
    )


def assemble(
    g: Guard,
    work: CohortStore,
    subject: str,
    done: StageResult,
    names: WorkNames,
    models: RunConfig,
    *,
    postprocess: bool,
    merge: MergeSettings | None = None,
    reference_mode: bool = False,
) -> Segmentation:
    """Merge the cutout predictions, post-process (or not) and label, inside ``g``.

    ``done``: the semantic result joined with its instance tasks (`StageResult.joined`).
    ``merge``: merge constants (a sweep's); default the instance model's. The result is in
    the input scan's geometry.
    """
    if done.record is None:
        raise ValueError(f"reduce step of {subject} got no crop record from its prepare step")
    space = instance_space(str(models.instance_model))
    sem = g.store(work.read_volume, subject, names.semantic)
    inst_in = g.store(work.read_volume, subject, names.instance_input)
    sem_out, inst_out, labeling, ctd = assemble_masks(
        sem,
        inst_in,
        done.predictions,
        done.record,
        space,
        postprocess_on=postprocess,
        merge=merge,
        reference_mode=reference_mode,
        numbering=reference_numbering(str(models.semantic_model)) if reference_mode else None,
    )
    return Segmentation(sem_out, inst_out, ctd, labeling.anchor, done.n_cutouts)


def park(g: Guard, work: CohortStore, subject: str, seg: Segmentation, names: WorkNames) -> None:
    """Park the assembled masks (scan grid) for the labelling and writing steps."""
    g.store(work.write_volume, subject, names.final_semantic, seg.semantic)
    g.store(work.write_volume, subject, names.final_instance, seg.instance)


def label(
    source: CohortStore,
    work: CohortStore,
    subject: str,
    prev: StageResult | Failure,
    names: WorkNames,
    models: RunConfig,
    *,
    naming: NamingSettings,
) -> StageResult | Failure:
    """Name the parked masks' vertebrae with the labelling model (a model task).

    Reads the scan from ``source`` and the assembled masks from ``work``; returns ``prev``
    with the `Naming` (small: a mapping and confidences), never a volume.
    """
    if isinstance(prev, Failure):
        return prev
    folder = models.labeling_folder
    if folder is None:
        raise ValueError(f"label step of {subject} scheduled without a labelling model")
    with Guard(subject, "label", prev.timings) as g:
        image = g.store(source.read_volume, subject, IMAGE)
        sem = g.store(work.read_volume, subject, names.final_semantic)
        inst = g.store(work.read_volume, subject, names.final_instance)
        model = model_cache.labeling_model(folder, device=models.device)
        named = name_vertebrae(image, sem, inst, prev.anchor or "none", model, settings=naming)
    return g.failure or prev.then("label", g.seconds, g.io, naming=named)


def named(
    g: Guard, work: CohortStore, subject: str, prev: StageResult, names: WorkNames
) -> Segmentation:
    """The parked masks with ``prev``'s naming applied (the rule's when no model ran)."""
    sem = g.store(work.read_volume, subject, names.final_semantic)
    inst = g.store(work.read_volume, subject, names.final_instance)
    naming = prev.naming or rule_naming(prev.anchor or "none")
    inst, ctd = apply_naming(inst, naming)
    return Segmentation(sem, inst, ctd, prev.anchor or "none", prev.n_cutouts, naming=naming)
