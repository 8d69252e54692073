"""The sweep's tasks: the shared steps under its own work names, and its scoring reduce.

What is the sweep's own: work arrays live in a separate work store under
``sweep-<stage key>-<what>``, so settings that share a stage share its arrays, and ``reduce``
scores the result against the references and returns the metric rows instead of writing
masks. Everything else (stages, timing, failures) is `spineps_dask.distributed.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from spineps_dask.config import RunConfig
from spineps_dask.distributed import steps
from spineps_dask.distributed.outcomes import Failure, Guard, StageResult, gather, worker_name
from spineps_dask.distributed.products import score_against_references
from spineps_dask.io.names import WorkNames
from spineps_dask.io.store import CohortStore
from spineps_dask.pipeline.naming import NamingSettings
from spineps_dask.sweep.settings import Setting


def work_names(setting: Setting) -> WorkNames:
    """Where ``setting``'s stages park their arrays: ``sweep-<stage key>-<what>``."""
    prepare, semantic = setting.key("prepare"), setting.key("semantic")
    assembled = setting.key("assemble")
    return WorkNames(
        prepared=f"sweep-{prepare}-prepared",
        semantic=f"sweep-{semantic}-semantic",
        instance_input=f"sweep-{semantic}-instance-input",
        final_semantic=f"sweep-{assembled}-final-semantic",
        final_instance=f"sweep-{assembled}-final-instance",
    )


@dataclass(frozen=True)
class SweepPart:
    """One subject x setting: its metric rows and what the reduce step took.

    ``instance``: ``(seconds, worker)`` of each instance task it used (shared with the other
    settings of the same semantic key; the driver records them once); ``shared``: the same
    for its ``assemble`` and ``label`` stages, as ``(stage, seconds, worker)``.
    """

    subject: str
    setting: str
    table: pd.DataFrame
    seconds: float
    worker: str
    instance: tuple[tuple[float, str], ...] = ()
    shared: tuple[tuple[str, float, str], ...] = ()


def prepare(
    cohort: CohortStore, work: CohortStore, subject: str, setting: Setting, models: RunConfig
) -> StageResult | Failure:
    """Check and preprocess the scan (N4 as the setting says, as the semantic model's modality
    needs); park it under its key."""
    return steps.prepare(
        cohort,
        work,
        subject,
        work_names(setting),
        n4=setting.n4,
        recipe=setting.recipe,
        modality=steps.semantic_modality(str(models.semantic_model)),
    )


def semantic(
    work: CohortStore,
    subject: str,
    prev: StageResult | Failure,
    setting: Setting,
    models: RunConfig,
) -> StageResult | Failure:
    """Semantic model (the setting's folds and step) + cleaning; park both grids; plan cutouts."""
    return steps.semantic(
        work,
        subject,
        prev,
        work_names(setting),
        models,
        step_size=setting.step_size,
        folds=setting.folds,
        reference_mode=setting.reference_mode,
    )


def instance(
    work: CohortStore,
    subject: str,
    sem: StageResult | Failure,
    indices: list[int],
    setting: Setting,
    models: RunConfig,
) -> StageResult | Failure:
    """Instance model on a batch of cutouts of the semantic mask parked for ``setting``."""
    return steps.instance(work, subject, sem, indices, work_names(setting), models)


@dataclass(frozen=True)
class Assembled:
    """An assembled (and maybe named) subject x setting on its way to scoring: the stage
    result and ``(seconds, worker)`` of the instance tasks it was made from."""

    result: StageResult
    runs: tuple[tuple[float, str], ...] = ()


def assemble(
    work: CohortStore,
    subject: str,
    setting: Setting,
    models: RunConfig,
    sem: StageResult | Failure,
    *parts: StageResult | Failure,
) -> Assembled | Failure:
    """Merge with the setting's thresholds, post-process or not, name by the rule; park the
    masks under the setting's assemble key (shared by settings that differ in naming only)."""
    done = gather(sem, parts)
    if isinstance(done, Failure):
        return done
    with Guard(subject, "assemble", done.timings) as g:
        space = steps.instance_space(str(models.instance_model))
        seg = steps.assemble(
            g,
            work,
            subject,
            done,
            work_names(setting),
            models,
            postprocess=setting.postprocess,
            merge=setting.merge_settings(space.merge_settings),
            reference_mode=setting.reference_mode,
        )
        steps.park(g, work, subject, seg, work_names(setting))
    if g.failure:
        return g.failure
    runs = tuple(
        (p.timings["instance"], p.workers["instance"]) for p in parts if isinstance(p, StageResult)
    )
    return Assembled(
        done.then("assemble", g.seconds, g.io, anchor=seg.anchor, predictions=()), runs
    )


def label(
    cohort: CohortStore,
    work: CohortStore,
    subject: str,
    prev: Assembled | Failure,
    setting: Setting,
    models: RunConfig,
) -> Assembled | Failure:
    """Name the parked vertebrae with the labelling model as the setting says."""
    if isinstance(prev, Failure):
        return prev
    named = steps.label(
        cohort,
        work,
        subject,
        prev.result,
        work_names(setting),
        replace(models, naming=setting.naming),
        naming=NamingSettings(method=setting.naming),
    )
    return named if isinstance(named, Failure) else Assembled(named, prev.runs)


def reduce(
    cohort: CohortStore,
    work: CohortStore,
    subject: str,
    setting: Setting,
    prev: Assembled | Failure,
) -> SweepPart | Failure:
    """Apply the naming to the parked masks and score them against the references."""
    if isinstance(prev, Failure):
        return prev
    done, runs = prev.result, prev.runs
    with Guard(subject, "reduce", done.timings) as g:
        seg = steps.named(g, work, subject, done, work_names(setting))
        table = score_against_references(cohort, subject, seg)
    if g.failure:
        return g.failure
    shared = tuple(
        (stage, done.timings[stage], done.workers[stage])
        for stage in ("assemble", "label")
        if stage in done.timings
    )
    return SweepPart(subject, setting.id, table, g.seconds, worker_name(), runs, shared)
