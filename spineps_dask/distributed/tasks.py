"""The task functions the runner submits: store I/O around the pipeline's stages.

Each task reads its inputs from the cohort store by key, runs one stage, writes what the next
stage needs back to the store, and returns only small values (timings, cutout centres,
predictions of a few cutouts). Expected failures (a bad scan, a bad model) come back as a
`Failure` value instead of an exception, so Dask does not retry them; anything else raises and
is retried (a lost worker, say).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from spineps_dask.biomarkers.levels import level_biomarkers
from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.errors import SpinepsDaskError
from spineps_dask.geometry import Volume
from spineps_dask.io.export import IMAGE, SNAPSHOT_BLOB, TABLE_BLOBS
from spineps_dask.io.references import REFERENCES
from spineps_dask.io.store import CohortStore
from spineps_dask.models.folders import load_model_folder
from spineps_dask.pipeline.merge import CutoutPrediction
from spineps_dask.pipeline.preprocess import CropRecord
from spineps_dask.pipeline.segment import (
    InstanceSpace,
    assemble,
    cutouts_at,
    instance_input,
    plan_cutouts,
    predict_cutouts,
    semantic_phase,
)
from spineps_dask.pipeline.segment import (
    prepare as prepare_image,
)
from spineps_dask.viz.snapshot import render_snapshot

logger = logging.getLogger(__name__)

PHASES = ("prepare", "semantic", "instance", "reduce")
#: Work arrays a subject keeps in the store between its tasks (deleted when it is done).
PREPARED, SEMANTIC_WORK, INSTANCE_INPUT = "work_prepared", "work_semantic", "work_instance_input"
#: Arrays whose presence (marked complete) means a subject is done.
OUTPUT_ARRAYS = ("semantic", "instance")
#: Timing key: seconds of store reads and writes, summed over a subject's tasks. Already part
#: of the phase seconds; kept apart to show what parking arrays in the store costs.
STORE_IO = "store_io"


@dataclass(frozen=True)
class Failure:
    """A subject that cannot be finished, and why: becomes a failed manifest row."""

    subject: str
    step: str
    error: str
    timings: dict[str, float] = field(default_factory=dict)

    def outcome(self) -> Any:
        from spineps_dask.distributed.runner import SubjectOutcome

        return SubjectOutcome(self.subject, "failed", self.step, self.error, timings=self.timings)


@dataclass(frozen=True)
class StageResult:
    """What a finished stage hands on: timings, workers, and the small values later stages need.

    ``record`` undoes the preprocessing crop/pad; ``centres`` are the cutout centres on the
    instance grid (after ``semantic``); ``predictions`` the instance model's output for a few
    cutouts (after ``instance``).
    """

    subject: str
    timings: dict[str, float]
    workers: dict[str, str]
    record: CropRecord | None = None
    centres: np.ndarray | None = None
    predictions: tuple[CutoutPrediction, ...] = ()

    @property
    def n_cutouts(self) -> int:
        return 0 if self.centres is None else len(self.centres)

    def then(self, step: str, seconds: float, io: float = 0.0, **changes: Any) -> StageResult:
        """This result plus one more stage's timing (``io``: its store seconds) and worker."""
        timings = _add(self.timings, step, seconds)
        return replace(
            self,
            timings=_add(timings, STORE_IO, io) if io else timings,
            workers={**self.workers, step: _worker_name()},
            **changes,
        )


def _add(timings: dict[str, float], key: str, seconds: float) -> dict[str, float]:
    return {**timings, key: timings.get(key, 0.0) + seconds}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:
        return f"pid{os.getpid()}"


class _Guard:
    """Times a stage; an expected error inside becomes ``self.failure`` instead of raising.

    Expected: our typed errors and `MemoryError` (retrying a subject too big for the worker
    only fails again, so it becomes a failed row at once, saying "out of memory").
    """

    def __init__(self, subject: str, step: str, timings: dict[str, float] | None = None):
        self.subject, self.step = subject, step
        self.timings = dict(timings or {})
        self.failure: Failure | None = None
        self.seconds = 0.0
        self.io = 0.0

    def store(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, a store read or write, its seconds counted in ``self.io``."""
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.io += time.perf_counter() - t0

    def __enter__(self) -> _Guard:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.seconds = time.perf_counter() - self._t0
        if isinstance(exc, SpinepsDaskError | MemoryError):
            logger.warning("%s failed in %s: %s", self.subject, self.step, exc)
            message = str(exc) or type(exc).__name__
            if isinstance(exc, MemoryError):  # this subject is too big for the worker
                message = (
                    f"out of memory in {self.step} (MemoryError: {message}); run it on workers "
                    "with more memory (memory_limit in the cluster config) or fewer threads each"
                )
            self.failure = Failure(
                self.subject, self.step, message, {**self.timings, self.step: self.seconds}
            )
            return True
        return False


def batch_indices(n: int, size: int) -> list[list[int]]:
    """Cutout indices 0..n-1 in batches of ``size`` (the instance tasks of one subject)."""
    size = max(1, size)
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


@functools.lru_cache(maxsize=8)
def _space(folder: str) -> InstanceSpace:
    return InstanceSpace.from_config(load_model_folder(folder, kind="instance").config)


def prepare(store: CohortStore, subject: str, cfg: RunConfig) -> StageResult | Failure:
    """Read the scan, check and preprocess it, park the prepared image in the store."""
    with _Guard(subject, "prepare") as g:
        image = g.store(store.read_volume, subject, IMAGE)
        prepared, record = prepare_image(image, n4=cfg.n4, subject=subject, recipe=cfg.recipe)
        g.store(store.write_volume, subject, PREPARED, prepared)
    return g.failure or StageResult(subject, {}, {}).then("prepare", g.seconds, g.io, record=record)


def semantic(
    store: CohortStore, subject: str, prev: StageResult | Failure, cfg: RunConfig
) -> StageResult | Failure:
    """Semantic model + cleaning; park the mask (prepared grid and instance grid); plan cutouts."""
    if isinstance(prev, Failure):
        return prev
    with _Guard(subject, "semantic", prev.timings) as g:
        prepared = g.store(store.read_volume, subject, PREPARED)
        model = model_cache.semantic_model(
            cfg.semantic_model, device=cfg.device, step_size=cfg.step_size
        )
        recipe = prev.record.recipe
        sem = semantic_phase(prepared, model, recipe=recipe)
        space = _space(str(cfg.instance_model))
        inst_in = instance_input(sem, space, recipe=recipe)
        centres = plan_cutouts(inst_in, space)
        g.store(store.write_volume, subject, SEMANTIC_WORK, sem)
        g.store(store.write_volume, subject, INSTANCE_INPUT, inst_in)
    return g.failure or prev.then("semantic", g.seconds, g.io, centres=centres)


def instance(
    store: CohortStore,
    subject: str,
    sem: StageResult | Failure,
    indices: Sequence[int],
    cfg: RunConfig,
) -> StageResult | Failure:
    """Instance model on a batch of cutouts, each read as a window of the parked mask."""
    if isinstance(sem, Failure):
        return sem
    with _Guard(subject, "instance", sem.timings) as g:
        space = _space(str(cfg.instance_model))
        array = store.open_array(subject, INSTANCE_INPUT)
        cutouts = g.store(cutouts_at, array, sem.centres, indices, space, subject=subject)
        model = model_cache.instance_model(cfg.instance_model, device=cfg.device)
        preds = tuple(predict_cutouts(cutouts, model))
    if g.failure:
        return g.failure
    return StageResult(
        subject,
        {"instance": g.seconds, STORE_IO: g.io},
        {"instance": _worker_name()},
        predictions=preds,
    )


def reduce(
    store: CohortStore,
    subject: str,
    cfg: RunConfig,
    sem: StageResult | Failure,
    *parts: StageResult | Failure,
) -> Any:
    """Merge, post-process, label; write the outputs whole; drop the work arrays."""
    from spineps_dask.distributed.runner import SubjectOutcome

    for p in (sem, *parts):
        if isinstance(p, Failure):
            return p.outcome()
    inst_seconds = sum(p.timings["instance"] for p in parts)  # type: ignore[union-attr]
    inst_io = sum(p.timings[STORE_IO] for p in parts)  # type: ignore[union-attr]
    prev = sem.then("instance", inst_seconds, inst_io) if parts else sem  # type: ignore[union-attr]
    with _Guard(subject, "reduce", prev.timings) as g:
        preds = [pr for p in parts for pr in p.predictions]  # type: ignore[union-attr]
        sem_vol = g.store(store.read_volume, subject, SEMANTIC_WORK)
        inst_in = g.store(store.read_volume, subject, INSTANCE_INPUT)
        space = _space(str(cfg.instance_model))
        sem_out, inst_out, labeling, ctd = assemble(
            sem_vol, inst_in, preds, prev.record, space, postprocess_on=cfg.postprocess
        )
        attrs = {
            "anchor": labeling.anchor,
            "config": cfg.fingerprint(),
            "models": cfg.model_versions(),
        }
        g.store(store.write_volume, subject, "semantic", sem_out, **attrs)
        g.store(
            store.write_volume, subject, "instance", inst_out, centroids=_ctd_attr(ctd), **attrs
        )
        if cfg.snapshot:
            image = g.store(store.read_volume, subject, IMAGE)
            png = render_snapshot(image, sem_out, inst_out, title=subject)
            g.store(store.write_blob, subject, SNAPSHOT_BLOB, png)
        bio = level_biomarkers(sem_out, inst_out, subject=subject)
        g.store(store.write_blob, subject, TABLE_BLOBS["biomarkers"], _parquet(bio))
        if cfg.metrics and all(store.has_volume(subject, r) for r in REFERENCES):
            table = score_against_references(store, subject, sem_out, inst_out, cfg)
            g.store(store.write_blob, subject, TABLE_BLOBS["metrics"], _parquet(table))
        for name in (PREPARED, SEMANTIC_WORK, INSTANCE_INPUT):
            g.store(store.delete_volume, subject, name)
    if g.failure:
        return g.failure.outcome()
    done = prev.then("reduce", g.seconds, g.io)
    return SubjectOutcome(
        subject,
        "done",
        n_cutouts=sem.n_cutouts,
        timings=done.timings,  # type: ignore[union-attr]
        workers=done.workers,
    )


def score_against_references(
    store: CohortStore, subject: str, semantic: Volume, instance: Volume, cfg: RunConfig
) -> pd.DataFrame:
    """The subject's metric rows (Dice, ASSD, RQ/SQ/PQ) against its ingested references."""
    from spineps_dask.metrics.tables import evaluate_subject

    ref_sem = store.read_volume(subject, "ref_semantic")
    ref_inst = store.read_volume(subject, "ref_instance")
    return evaluate_subject(
        np.asarray(semantic.data),
        np.asarray(instance.data),
        np.asarray(ref_sem.data),
        np.asarray(ref_inst.data),
        spacing=semantic.spacing,
        subject=subject,
        config=cfg.fingerprint(),
        models=cfg.model_versions(),
        postprocess=cfg.postprocess,
        n4=cfg.n4,
    )


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _ctd_attr(ctd: dict[int, tuple[float, float, float]]) -> dict[str, list[float]]:
    """Centroids as a JSON-able attribute: ``{"20": [x, y, z], ...}`` in voxel indices."""
    return {str(k): [round(float(c), 3) for c in v] for k, v in sorted(ctd.items())}
