"""The run's tasks: the shared steps with the run's settings and work names, and its reduce.

The runner submits these. Work arrays are parked in the cohort store under `RUN_WORK`;
``assemble`` merges, post-processes and parks the masks, ``label`` names their vertebrae with
the labelling model (when the run has one), ``reduce`` applies the naming, calls the writers
its settings choose (`products_for`) and deletes the work arrays. Expected failures come back
as `Failure` values (see `outcomes`), so Dask retries only what may succeed on another try.
"""

from __future__ import annotations

from collections.abc import Sequence

from spineps_dask.config import RunConfig
from spineps_dask.distributed import steps
from spineps_dask.distributed.outcomes import (
    Failure,
    Guard,
    StageResult,
    SubjectOutcome,
    gather,
)
from spineps_dask.distributed.products import products_for
from spineps_dask.io.names import RUN_WORK
from spineps_dask.io.store import CohortStore
from spineps_dask.pipeline.naming import NamingSettings


def prepare(store: CohortStore, subject: str, cfg: RunConfig) -> StageResult | Failure:
    """Check and preprocess the scan; park it as ``work_prepared``."""
    return steps.prepare(store, store, subject, RUN_WORK, n4=cfg.n4, recipe=cfg.recipe)


def semantic(
    store: CohortStore, subject: str, prev: StageResult | Failure, cfg: RunConfig
) -> StageResult | Failure:
    """Semantic model + cleaning; park the mask on both grids; plan the cutouts."""
    return steps.semantic(
        store,
        subject,
        prev,
        RUN_WORK,
        cfg,
        step_size=cfg.step_size,
        reference_mode=cfg.reference_mode,
    )


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
        return prev
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
    """Apply the naming; write the products whole; drop the work arrays."""
    if isinstance(prev, Failure):
        return prev.outcome()
    with Guard(subject, "reduce", prev.timings) as g:
        seg = steps.named(g, store, subject, prev, RUN_WORK)
        for write in products_for(cfg):
            write(g, store, subject, seg, cfg)
        for name in RUN_WORK.all():
            g.store(store.delete_volume, subject, name)
    if g.failure:
        return g.failure.outcome()
    done = prev.then("reduce", g.seconds, g.io)
    return SubjectOutcome(
        subject,
        "done",
        n_cutouts=prev.n_cutouts,
        timings=done.timings,
        workers=done.workers,
        naming=seg.naming.summary() if seg.naming is not None else {},
    )
