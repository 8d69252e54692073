"""Run a store resumably: pick the subjects not done yet, run them, record them in the manifest.

A subject is done when its ``segment`` row is ok with the current config fingerprint and its
output arrays are complete. Rows are flushed every few seconds and when a run stops (Ctrl-C
included), so re-running the same command continues where it stopped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from distributed import Client

from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import PHASES, SubjectOutcome
from spineps_dask.distributed.runner import RunEvents, run_cohort
from spineps_dask.errors import StoreError
from spineps_dask.io.lock import run_lock
from spineps_dask.io.manifest import Manifest, make_row
from spineps_dask.io.names import OUTPUTS
from spineps_dask.io.store import CohortStore

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """Result of `run_store`: outcomes of processed subjects, subjects skipped as done."""

    run_id: str
    outcomes: list[SubjectOutcome]
    skipped: list[str]
    wall_seconds: float

    @property
    def done(self) -> list[SubjectOutcome]:
        return [o for o in self.outcomes if o.status == "done"]

    @property
    def failed(self) -> list[SubjectOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def subjects_per_hour(self) -> float:
        return 3600.0 * len(self.done) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def phase_seconds(self) -> dict[str, float]:
        """Summed task seconds per phase over the subjects that finished."""
        total: dict[str, float] = {}
        for o in self.done:
            for k, v in o.timings.items():
                total[k] = total.get(k, 0.0) + v
        return total

    def __str__(self) -> str:
        return (
            f"run {self.run_id}: {len(self.done)} done, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, {self.subjects_per_hour:.0f} subjects/hour, "
            f"{self.wall_seconds:.1f} s"
        )


def select_subjects(
    store: CohortStore,
    manifest: Manifest,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
) -> tuple[list[str], list[str]]:
    """``(to_process, skipped)``: ingested subjects minus those already done with this config.

    Done means: a ``segment`` row with status ok, the same config fingerprint, and both output
    arrays present and marked complete in the store (a half-written mask never counts).
    """
    ingested = manifest.rows(phase="ingest")
    wanted = list(subjects) if subjects is not None else sorted(ingested)
    finished = manifest.rows(phase="segment")
    fingerprint = cfg.fingerprint()
    todo, skipped = [], []
    for subject in wanted:
        row = ingested.get(subject)
        if row is None or row["status"] != "ok":
            continue  # never ingested, or failed at ingest: its ingest row says why
        done = finished.get(subject)
        if (
            not force
            and done is not None
            and done["status"] == "ok"
            and done.get("config") == fingerprint
            and all(store.has_volume(subject, n) for n in OUTPUTS)
        ):
            skipped.append(subject)
        else:
            todo.append(subject)
    return todo, skipped


def outcome_rows(outcome: SubjectOutcome, *, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Manifest rows for one subject: a ``segment`` row plus one row per phase it ran.

    ``common``: run id, config fingerprint and model versions, computed once per run.
    """
    status = {"done": "ok", "failed": "failed", "skipped": "skipped"}[outcome.status]
    rows = [
        make_row(
            outcome.subject,
            status,
            phase="segment",
            error=outcome.error or None,
            step=outcome.step or None,
            seconds=outcome.timings.get("wall"),
            timings=outcome.timings,
            worker=",".join(sorted(set(outcome.workers.values()))) or None,
            n_cutouts=outcome.n_cutouts,
            **outcome.naming,
            **common,
        )
    ]
    for phase in PHASES:
        if phase in outcome.timings:
            failed_here = outcome.status == "failed" and outcome.step == phase
            rows.append(
                make_row(
                    outcome.subject,
                    "failed" if failed_here else "ok",
                    phase=phase,
                    seconds=outcome.timings[phase],
                    worker=outcome.workers.get(phase),
                    error=outcome.error if failed_here else None,
                    **common,
                )
            )
    return rows


def run_store(
    client: Client,
    store: CohortStore,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
    events: RunEvents | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    flush_seconds: float = 10.0,
) -> RunSummary:
    """Process every ingested subject of ``store`` that is not done yet; resumable.

    Holds the store's run lock throughout. Manifest rows are flushed every ``flush_seconds``
    and at the end, so an interrupted run keeps the subjects it finished.

    Raises
    ------
    StoreError
        Another run holds the store, or the manifest cannot be written at the end (the file
        on disk then stays the previous, whole one).
    """
    with run_lock(store):
        manifest = store.manifest
        todo, skipped = select_subjects(store, manifest, cfg, subjects=subjects, force=force)
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
        logger.info("run %s: %d to process, %d already done", run_id, len(todo), len(skipped))
        # Hashing the model folders once per run, not once per finished subject.
        common = {"run_id": run_id, "config": cfg.fingerprint(), "models": cfg.model_versions()}
        rows = _PendingRows(manifest, flush_seconds)
        t0 = time.perf_counter()
        try:
            outcomes = run_cohort(
                client,
                store,
                todo,
                cfg,
                max_in_flight=max_in_flight,
                retries=retries,
                events=events,
                on_outcome=lambda o: rows.add(outcome_rows(o, common=common)),
            )
        except BaseException:
            try:
                rows.flush()
            except StoreError as exc:  # keep the error that stopped the run
                logger.error("manifest not written on stopping: %s", exc)
            raise
        rows.flush()  # raises StoreError (the manifest on disk stays whole) when it is full
        return RunSummary(run_id, outcomes, skipped, time.perf_counter() - t0)


class _PendingRows:
    """Manifest rows not written yet; written every ``seconds`` and by `flush`."""

    def __init__(self, manifest: Manifest, seconds: float) -> None:
        self.manifest, self.seconds = manifest, seconds
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.pending.extend(rows)
        if time.monotonic() - self.last > self.seconds:
            try:
                self.flush()
            except StoreError as exc:  # maybe space comes back; the final flush decides
                logger.error(
                    "manifest not written, %d rows kept for later: %s", len(self.pending), exc
                )

    def flush(self) -> None:
        """Write the pending rows (StoreError on a full disk: they stay pending)."""
        self.last = time.monotonic()
        if self.pending:
            self.manifest.upsert(self.pending)
            self.pending.clear()
