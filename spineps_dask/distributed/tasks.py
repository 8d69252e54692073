"""The run's tasks: the shared steps with the run's settings and work names, and its reduce.

The runner submits these. Work arrays are parked in the cohort store under `RUN_WORK`;
``assemble`` merges, post-processes and parks the masks, ``label`` names their vertebrae with
the labelling model (when the run has one), ``reduce`` applies the naming, calls the writers
its settings choose (`products_for`) and deletes the work arrays (a subject that failed in any
step has them dropped there); ``score`` scores a finished subject's stored masks against
references that came after it was segmented (no model runs). Expected failures come back
as `Failure` values (see `outcomes`), so Dask retries only what may succeed on another try.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from spineps_dask.config import RunConfig
from spineps_dask.distributed import steps
from spineps_dask.distributed.outcomes import (
    STORE_IO,
    Failure,
    Guard,
    StageResult,
    SubjectOutcome,
    gather,
)
from spineps_dask.distributed.products import products_for, write_scores
from spineps_dask.errors import StoreError
from spineps_dask.io.names import INSTANCE, RUN_WORK, SEMANTIC
from spineps_dask.io.store import CohortStore
from spineps_dask.pipeline.naming import NamingSettings

logger = logging.getLogger(__name__)


def prepare(store: CohortStore, subject: str, cfg: RunConfig) -> StageResult | Failure:
    """Check and preprocess the scan; park it as ``work_prepared``."""
    modality = steps.semantic_modality(str(cfg.semantic_model))
    return steps.prepare(
        store, store, subject, RUN_WORK, n4=cfg.n4, recipe=cfg.recipe, modality=modality
    )


def semantic(
    store: CohortStore, subject: str, prev: StageResult | Failure, cfg: RunConfig
) -> StageResult | Failure:
    """Semantic model + cleaning; park the mask on both grids; plan the cutouts.

    A subject that failed here or in ``prepare`` ends (no reduce follows): its work arrays
    are dropped now.
    """
    result = steps.semantic(
        store,
        subject,
        prev,
        RUN_WORK,
        cfg,
        step_size=cfg.step_size,
        reference_mode=cfg.reference_mode,
    )
    if isinstance(result, Failure):
        drop_work(store, subject)
    return result


def instance(
    store: CohortStore,
    subject: str,
    sem: StageResult | Failure,
    indices: Sequence[int],
    cfg: RunConfig,
) -> StageResult | Failure:
    """Instance model on a batch of cutouts of the parked mask."""
    return steps.instance(store, subject, sem, indices, RUN_WORK, cfg)


def assemble(
    store: CohortStore,
    subject: str,
    cfg: RunConfig,
    sem: StageResult | Failure,
    *parts: StageResult | Failure,
) -> StageResult | Failure:
    """Merge, post-process and name by the rule; park the masks for ``label`` and ``reduce``."""
    prev = gather(sem, parts)
    if isinstance(prev, Failure):
        return prev  # reduce ends the subject (and drops its work arrays)
    with Guard(subject, "assemble", prev.timings) as g:
        seg = steps.assemble(
            g,
            store,
            subject,
            prev,
            RUN_WORK,
            cfg,
            postprocess=cfg.postprocess,
            reference_mode=cfg.reference_mode,
        )
        steps.park(g, store, subject, seg, RUN_WORK)
    if g.failure:
        return g.failure
    return prev.then("assemble", g.seconds, g.io, anchor=seg.anchor, predictions=())


def label(
    store: CohortStore, subject: str, prev: StageResult | Failure, cfg: RunConfig
) -> StageResult | Failure:
    """Name the assembled vertebrae with the run's labelling model."""
    naming = NamingSettings(method=cfg.naming)
    return steps.label(store, store, subject, prev, RUN_WORK, cfg, naming=naming)


def reduce(
    store: CohortStore, subject: str, cfg: RunConfig, prev: StageResult | Failure
) -> SubjectOutcome:
    """Apply the naming; write the products whole; drop the work arrays (also of a subject
    that failed in an earlier step: this is where it ends)."""
    if isinstance(prev, Failure):
        drop_work(store, subject)
        return prev.outcome()
    with Guard(subject, "reduce", prev.timings) as g:
        seg = steps.named(g, store, subject, prev, RUN_WORK)
        recorded: dict[str, Any] = {}
        for write in products_for(cfg):
            recorded.update(write(g, store, subject, seg, cfg) or {})
        for name in RUN_WORK.all():
            g.store(store.delete_volume, subject, name)
    if g.failure:
        drop_work(store, subject)
        return g.failure.outcome()
    done = prev.then("reduce", g.seconds, g.io)
    return SubjectOutcome(
        subject,
        "done",
        n_cutouts=prev.n_cutouts,
        timings=done.timings,
        workers=done.workers,
        references=recorded.get("references"),
        naming=seg.naming.summary() if seg.naming is not None else {},
    )


def drop_work(store: CohortStore, subject: str) -> None:
    """Delete a failed subject's work arrays, as far as the store lets us (a full disk may
    still refuse): they would only be rewritten by the subject's next try."""
    for name in RUN_WORK.all():
        try:
            store.delete_volume(subject, name)
        except StoreError as exc:
            logger.debug("%s: %s left behind: %s", subject, name, exc)


def score(store: CohortStore, subject: str, cfg: RunConfig) -> SubjectOutcome:
    """Score the stored masks of a finished subject against its references (new or changed
    since it was segmented): the metric table, without running a model."""
    with Guard(subject, "score") as g:
        semantic = g.store(store.read_volume, subject, SEMANTIC)
        instance = g.store(store.read_volume, subject, INSTANCE)
        references = write_scores(g, store, subject, semantic, instance, cfg)
    if g.failure:
        outcome = g.failure.outcome()
        outcome.task = "score"
        return outcome
    return SubjectOutcome(
        subject,
        "done",
        timings={"score": g.seconds, STORE_IO: g.io},
        task="score",
        references=references,
    )
