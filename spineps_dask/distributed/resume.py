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
from spineps_dask.errors import DamagedVolumeError, StoreError
from spineps_dask.io.lock import writer_lock
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
    verify: bool = False,
) -> tuple[list[str], list[str]]:
    """``(to_process, skipped)``: ingested subjects minus those already done with this config.

    Done means: a ``segment`` row with status ok, the same config fingerprint, and both output
    arrays present, marked complete and matching the checksums written with them (a
    half-written or damaged mask never counts): the stored chunk sizes, or with ``verify``
    every voxel. A damaged subject is segmented again. `run_store` does the same with the
    checks on the cluster, beside the run (`plan_subjects`, `damaged_subjects`).
    """
    asked = list(subjects) if subjects is not None else None
    todo, done = plan_subjects(manifest, cfg, subjects=asked, force=force)
    damaged = set(damaged_subjects(store, done, full=verify))
    return _in_order(todo, damaged, asked), [s for s in done if s not in damaged]


def plan_subjects(
    manifest: Manifest,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
) -> tuple[list[str], list[str]]:
    """``(to_process, done_by_the_manifest)`` from the manifest alone, in one read.

    Vectorised over the manifest's rows and with no call to the store per subject: at
    100 000 subjects this is what a run waits for before its first task (issue 19). The
    ``done`` subjects still need their outputs checked (`damaged_subjects`) before they count.
    """
    df = manifest.read(columns=["status", "config"])
    ok = df["status"] == "ok"
    ingested = set(df.loc[ok & (df["phase"] == "ingest"), "subject"])
    segment = ok & (df["phase"] == "segment")
    if "config" in df:
        segment &= df["config"] == cfg.fingerprint()
    finished = set() if force else set(df.loc[segment, "subject"])
    wanted = list(subjects) if subjects is not None else sorted(ingested)
    # never ingested, or failed at ingest: not taken (its ingest row says why)
    wanted = [s for s in wanted if s in ingested]
    return [s for s in wanted if s not in finished], [s for s in wanted if s in finished]


def damaged_subjects(store: CohortStore, subjects: Iterable[str], *, full: bool) -> list[str]:
    """The ``subjects`` whose outputs are missing, incomplete or damaged (`verify_volume`:
    chunk sizes, or every voxel with ``full``). A task: `run_store` checks in batches on
    the cluster, where reading a store costs the driver nothing."""
    return [
        s
        for s in subjects
        if not (all(store.has_volume(s, n) for n in OUTPUTS) and _intact(store, s, full=full))
    ]


def _in_order(todo: list[str], damaged: set[str], asked: list[str] | None) -> list[str]:
    """``todo`` plus the ``damaged`` done subjects, in the order asked (default: sorted)."""
    if not damaged:
        return todo
    if asked is None:
        return sorted([*todo, *damaged])
    order = {s: i for i, s in enumerate(asked)}
    return sorted({*todo, *damaged}, key=order.__getitem__)


def _intact(store: CohortStore, subject: str, *, full: bool) -> bool:
    """The subject's masks match their checksums; damage is logged (one line) and redone."""
    try:
        for name in OUTPUTS:
            store.verify_volume(subject, name, full=full)
    except DamagedVolumeError as exc:
        logger.warning("%s: %s; segmenting it again", subject, exc)
        return False
    return True


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
    verify: bool = False,
) -> RunSummary:
    """Process every ingested subject of ``store`` that is not done yet; resumable.

    Holds the store's lock throughout (or runs inside the caller's, `run_batch`). Manifest
    rows are flushed every ``flush_seconds`` and at the end, so an interrupted run keeps the
    subjects it finished. The subjects done by the manifest have their outputs checked on the
    cluster while the others run, and the damaged ones are run after them: the driver starts
    after one read of the manifest (`plan_subjects`). ``verify``: check every voxel of the
    subjects it skips as done, not only their stored chunk sizes (`damaged_subjects`).

    Raises
    ------
    StoreError
        Another run holds the store, or the manifest cannot be written at the end (the file
        on disk then stays the previous, whole one).
    """
    with writer_lock(store, purpose="run"):
        manifest = store.manifest
        todo, done = plan_subjects(manifest, cfg, subjects=subjects, force=force)
        checks = _OutputChecks(client, store, done, full=verify)  # on the cluster, meanwhile
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
        logger.info("run %s: %d to process, %d already done", run_id, len(todo), len(done))
        # Hashing the model folders once per run, not once per finished subject.
        common = {"run_id": run_id, "config": cfg.fingerprint(), "models": cfg.model_versions()}
        rows = _PendingRows(manifest, flush_seconds)
        t0 = time.perf_counter()

        def run(part: list[str]) -> list[SubjectOutcome]:
            return run_cohort(
                client,
                store,
                part,
                cfg,
                max_in_flight=max_in_flight,
                retries=retries,
                events=events,
                on_outcome=lambda o: rows.add(outcome_rows(o, common=common)),
            )

        try:
            outcomes = run(todo)
            damaged = checks.damaged()
            if damaged:  # done by the manifest, but their masks are not what was written
                outcomes += run(damaged)
        except BaseException:
            try:
                rows.flush()
            except StoreError as exc:  # keep the error that stopped the run
                logger.error("manifest not written on stopping: %s", exc)
            raise
        rows.flush()  # raises StoreError (the manifest on disk stays whole) when it is full
        skipped = [s for s in done if s not in set(damaged)]
        return RunSummary(run_id, outcomes, skipped, time.perf_counter() - t0)


class _OutputChecks:
    """`damaged_subjects` of the subjects done by the manifest, checked in batches on the
    cluster while the run segments the others: the driver never reads their outputs."""

    BATCH = 500  # subjects per check task: a few seconds of a worker, 200 tasks at 100 000

    def __init__(self, client: Client, store: CohortStore, done: list[str], *, full: bool):
        self.store, self.full = store, full
        self.batches = [done[i : i + self.BATCH] for i in range(0, len(done), self.BATCH)]
        self.futures = client.map(
            damaged_subjects, self.batches, store=store, full=full, pure=False, priority=-1
        )

    def damaged(self) -> list[str]:
        """The damaged subjects (waits for the checks); a batch whose task failed (its
        worker lost) is checked here instead."""
        out: list[str] = []
        for batch, future in zip(self.batches, self.futures, strict=True):
            try:
                out += future.result()
            except Exception as exc:
                logger.warning(
                    "checking %d done subjects failed on the cluster (%s); checking them here",
                    len(batch),
                    exc,
                )
                out += damaged_subjects(self.store, batch, full=self.full)
        return out


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
