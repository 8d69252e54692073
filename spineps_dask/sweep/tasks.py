"""The sweep's task functions: the runner's stages, with work arrays keyed by stage hash.

Same pipeline functions and error handling as `spineps_dask.distributed.tasks` (a `Failure`
value for an expected error, an exception for anything Dask should retry). The differences:
work arrays live in a separate work store under ``sweep-<stage key>-<what>`` so settings that
share a stage share its arrays, and ``reduce`` scores the result against the references and
returns the metric rows instead of writing masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.distributed.tasks import Failure, StageResult, _Guard, _space, _worker_name
from spineps_dask.io.export import IMAGE
from spineps_dask.io.store import CohortStore
from spineps_dask.metrics.tables import evaluate_subject
from spineps_dask.pipeline.segment import (
    assemble,
    cutouts_at,
    instance_input,
    plan_cutouts,
    predict_cutouts,
    semantic_phase,
)
from spineps_dask.pipeline.segment import prepare as prepare_image
from spineps_dask.sweep.settings import Setting


def work_name(key: str, what: str) -> str:
    """Store name of a parked work array: ``sweep-<stage key>-<what>``."""
    return f"sweep-{key}-{what}"


@dataclass(frozen=True)
class SweepPart:
    """One subject x setting: its metric rows and what the reduce step took.

    ``instance``: ``(seconds, worker)`` of each instance task it used (shared with the other
    settings of the same semantic key; the driver records them once).
    """

    subject: str
    setting: str
    table: pd.DataFrame
    seconds: float
    worker: str
    instance: tuple[tuple[float, str], ...] = ()


def prepare(
    cohort: CohortStore, work: CohortStore, subject: str, setting: Setting
) -> StageResult | Failure:
    """Check and preprocess the scan (N4 as the setting says); park it under its key."""
    with _Guard(subject, "prepare") as g:
        image = cohort.read_volume(subject, IMAGE)
        prepared, record = prepare_image(
            image, n4=setting.n4, subject=subject, recipe=setting.recipe
        )
        work.write_volume(subject, work_name(setting.key("prepare"), "prepared"), prepared)
    return g.failure or StageResult(subject, {}, {}).then("prepare", g.seconds, record=record)


def semantic(
    work: CohortStore,
    subject: str,
    prev: StageResult | Failure,
    setting: Setting,
    models: RunConfig,
) -> StageResult | Failure:
    """Semantic model (the setting's folds and step) + cleaning; park both grids; plan cutouts."""
    if isinstance(prev, Failure):
        return prev
    key = setting.key("semantic")
    with _Guard(subject, "semantic", prev.timings) as g:
        prepared = work.read_volume(subject, work_name(setting.key("prepare"), "prepared"))
        model = model_cache.semantic_model(
            models.semantic_model,
            device=models.device,
            folds=setting.folds,
            step_size=setting.step_size,
        )
        sem = semantic_phase(prepared, model, recipe=setting.recipe)
        space = _space(str(models.instance_model))
        inst_in = instance_input(sem, space, recipe=setting.recipe)
        centres = plan_cutouts(inst_in, space)
        work.write_volume(subject, work_name(key, "semantic"), sem)
        work.write_volume(subject, work_name(key, "instance-input"), inst_in)
    return g.failure or prev.then("semantic", g.seconds, centres=centres)


def instance(
    work: CohortStore,
    subject: str,
    sem: StageResult | Failure,
    indices: Sequence[int],
    key: str,
    models: RunConfig,
) -> StageResult | Failure:
    """Instance model on a batch of cutouts of the semantic mask parked under ``key``."""
    if isinstance(sem, Failure):
        return sem
    with _Guard(subject, "instance", sem.timings) as g:
        space = _space(str(models.instance_model))
        array = work.open_array(subject, work_name(key, "instance-input"))
        cutouts = cutouts_at(array, sem.centres, indices, space, subject=subject)
        model = model_cache.instance_model(models.instance_model, device=models.device)
        preds = tuple(predict_cutouts(cutouts, model))
    if g.failure:
        return g.failure
    return StageResult(subject, {}, {}).then("instance", g.seconds, predictions=preds)


def reduce(
    cohort: CohortStore,
    work: CohortStore,
    subject: str,
    setting: Setting,
    models: RunConfig,
    sem: StageResult | Failure,
    *parts: StageResult | Failure,
) -> SweepPart | Failure:
    """Merge with the setting's thresholds, post-process or not, score against the references."""
    for p in (sem, *parts):
        if isinstance(p, Failure):
            return p
    sem = cast(StageResult, sem)
    done = [cast(StageResult, p) for p in parts]
    key = setting.key("semantic")
    with _Guard(subject, "reduce", sem.timings) as g:
        space = _space(str(models.instance_model))
        sem_out, inst_out, _, _ = assemble(
            work.read_volume(subject, work_name(key, "semantic")),
            work.read_volume(subject, work_name(key, "instance-input")),
            [pr for p in done for pr in p.predictions],
            sem.record,
            space,
            postprocess_on=setting.postprocess,
            merge=setting.merge_settings(space.merge_settings),
        )
        table = evaluate_subject(
            np.asarray(sem_out.data),
            np.asarray(inst_out.data),
            np.asarray(cohort.read_volume(subject, "ref_semantic").data),
            np.asarray(cohort.read_volume(subject, "ref_instance").data),
            spacing=sem_out.spacing,
            subject=subject,
        )
    if g.failure:
        return g.failure
    instance_runs = tuple((p.timings["instance"], p.workers["instance"]) for p in done)
    return SweepPart(subject, setting.id, table, g.seconds, _worker_name(), instance_runs)
