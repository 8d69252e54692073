"""Drive a cohort through the cluster: a bounded window of subjects, one small graph each.

Per subject: ``prepare`` -> ``semantic`` (model slot) -> ``instance`` x ceil(cutouts / batch)
(model slot) -> ``reduce``. The number of instance tasks is known only after the semantic phase,
so the client adds them when the semantic task finishes (its result is small: the cutout
centres, not arrays). At most ``max_in_flight`` subjects are in the cluster at once, so a
100 000-subject cohort never means 100 000 futures (distributed-notes: bound in-flight work).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future, as_completed

from spineps_dask.config import RunConfig
from spineps_dask.distributed import tasks
from spineps_dask.distributed.cluster import MODEL_RESOURCE
from spineps_dask.errors import StoreError
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, local_path
from spineps_dask.io.manifest import Manifest, make_row
from spineps_dask.io.store import CohortStore

logger = logging.getLogger(__name__)


@dataclass
class SubjectOutcome:
    """What happened to one subject in this run (one manifest row per subject and run)."""

    subject: str
    status: str  # "done" | "failed" | "skipped"
    step: str = ""
    error: str = ""
    n_cutouts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)


class RunEvents:
    """Progress hooks; the CLI draws bars from them, tests can count them. No-ops here."""

    def subjects_total(self, n: int) -> None: ...
    def cutouts_planned(self, n: int) -> None: ...
    def cutouts_done(self, n: int) -> None: ...
    def subject_finished(self, outcome: SubjectOutcome) -> None: ...


def _cutouts_done(events: RunEvents, n: int, _future: Future) -> None:
    events.cutouts_done(n)


@dataclass
class _Flight:
    subject: str
    semantic: Future
    started: float
    held: list[Future] = field(default_factory=list)
    n_cutouts: int = 0


def run_cohort(
    client: Client,
    store: CohortStore,
    subjects: Iterable[str],
    cfg: RunConfig,
    *,
    max_in_flight: int | None = None,
    retries: int = 2,
    events: RunEvents | None = None,
    on_outcome: Callable[[SubjectOutcome], None] | None = None,
) -> list[SubjectOutcome]:
    """Process ``subjects`` (already filtered for resume) and return one outcome each.

    ``retries`` re-runs a task whose worker died or that raised an unexpected error; expected
    errors (bad scan, bad model) come back as `tasks.Failure` values and are not retried.
    ``on_outcome`` is called as each subject ends (the manifest is written from it, so a crash
    loses at most the subjects in flight).
    """
    events = events or RunEvents()
    queue = deque(subjects)
    events.subjects_total(len(queue))
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    window = max_in_flight or 2 * n_workers + 1
    token = uuid.uuid4().hex[:6]
    flights: dict[str, _Flight] = {}
    ac = as_completed()
    phase_of: dict[str, tuple[str, str]] = {}  # future key -> (subject, phase)
    outcomes: list[SubjectOutcome] = []

    def submit(fn: Any, *args: Any, name: str, subject: str, model: bool = False, prio: int = 0):
        return client.submit(
            fn,
            *args,
            key=f"{name}-{subject}-{token}",
            resources={MODEL_RESOURCE: 1} if model else None,
            retries=retries,
            priority=prio,
            pure=False,
        )

    def start_next() -> None:
        while queue and len(flights) < window:
            subject = queue.popleft()
            prep = submit(tasks.prepare, store, subject, cfg, name="prepare", subject=subject)
            sem = submit(
                tasks.semantic,
                store,
                subject,
                prep,
                cfg,
                name="semantic",
                subject=subject,
                model=True,
                prio=1,
            )
            flights[subject] = _Flight(subject, sem, time.perf_counter(), held=[prep, sem])
            phase_of[sem.key] = (subject, "semantic")
            ac.add(sem)

    def finish(outcome: SubjectOutcome) -> None:
        flight = flights.pop(outcome.subject)
        outcome.timings.setdefault("wall", time.perf_counter() - flight.started)
        for fut in flight.held:
            fut.release()
        outcomes.append(outcome)
        if on_outcome is not None:  # record before anything else can interrupt
            on_outcome(outcome)
        events.subject_finished(outcome)

    start_next()
    for fut in ac:
        subject, phase = phase_of.pop(fut.key)
        flight = flights[subject]
        try:
            result = fut.result()
        except Exception as exc:  # lost beyond retries, or an unexpected bug in a task
            logger.exception("subject %s failed in %s", subject, phase)
            finish(SubjectOutcome(subject, "failed", *describe_error(client, exc, phase)))
            start_next()
            continue
        if isinstance(result, tasks.Failure):
            finish(result.outcome())
        elif phase == "semantic":
            batches = tasks.batch_indices(result.n_cutouts, cfg.cutouts_per_task)
            flight.n_cutouts = result.n_cutouts
            events.cutouts_planned(result.n_cutouts)
            inst = [
                submit(
                    tasks.instance,
                    store,
                    subject,
                    fut,
                    b,
                    cfg,
                    name=f"instance{b[0]}",
                    subject=subject,
                    model=True,
                    prio=2,
                )
                for b in batches
            ]
            for f, b in zip(inst, batches, strict=True):
                f.add_done_callback(functools.partial(_cutouts_done, events, len(b)))
            red = submit(
                tasks.reduce,
                store,
                subject,
                cfg,
                fut,
                *inst,
                name="reduce",
                subject=subject,
                prio=3,
            )
            phase_of[red.key] = (subject, "reduce")
            flight.held += [*inst, red]
            ac.add(red)
            continue
        else:
            finish(result)  # reduce returns the subject's outcome
        start_next()
    return outcomes


def describe_error(client: Client, exc: BaseException, phase: str) -> tuple[str, str]:
    """``(step, message)`` for a task that raised ``exc`` beyond its retries.

    A `KilledWorker` (every worker that ran the task died) names the task that killed them
    and says "out of memory" when the nanny restarted those workers for their memory limit
    (its ``worker-restart-memory`` events); otherwise the cause is unknown and the message
    says where to look.
    """
    from distributed import KilledWorker

    if not isinstance(exc, KilledWorker):
        return phase, f"{type(exc).__name__}: {exc}"
    step = re.match(r"[a-z]+", str(exc.task))
    step = step.group(0) if step else phase
    tries = exc.allowed_failures + 1
    try:
        events = client.get_events("worker-restart-memory")
    except Exception:  # an old or unreachable scheduler: report without the cause
        events = ()
    last = getattr(exc.last_worker, "address", str(exc.last_worker))
    if any(isinstance(e, dict) and e.get("worker") == last for _, e in events):
        return step, (
            f"out of memory in {step}: the workers running it went over their memory limit "
            f"and were restarted ({tries} tries, KilledWorker); run it on workers with more "
            "memory (memory_limit in the cluster config) or fewer threads each"
        )
    return step, (
        f"the workers running {step} died {tries} times (KilledWorker): out of memory, a crash "
        "in native code, or a lost machine; see the worker logs"
    )


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
            and all(store.has_volume(subject, n) for n in tasks.OUTPUT_ARRAYS)
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
            **common,
        )
    ]
    for phase in tasks.PHASES:
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

    Manifest rows are flushed every ``flush_seconds`` and at the end, so an interrupted run
    keeps the subjects it finished; re-running picks up the rest.
    """
    with run_lock(store):
        return _run_store(
            client,
            store,
            cfg,
            subjects=subjects,
            force=force,
            events=events,
            max_in_flight=max_in_flight,
            retries=retries,
            flush_seconds=flush_seconds,
        )


@contextlib.contextmanager
def run_lock(store: CohortStore) -> Iterator[None]:
    """One run per store at a time: a second one refuses with a clear message.

    Two runs would both take the same unfinished subjects and write the same arrays. Local
    stores use an ``flock`` on ``<store>/.run.lock`` (released by the OS if the driver dies);
    object stores cannot be locked this way, so there only one driver may run (README).
    """
    if is_remote(store.url):
        yield
        return
    path = local_path(store.url) / ".run.lock"
    try:  # unbuffered: nothing is left to flush (and fail) on close when the disk is full
        fh = open(path, "a+b", buffering=0)  # noqa: SIM115 (closed by the `with` below)
    except OSError as exc:
        raise store_write_error(exc, "the run lock", str(path)) from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().decode(errors="replace").strip() or "another process"
            raise StoreError(
                f"another run is using {store.url} ({holder}); wait for it to finish or stop it. "
                "Runs resume, so nothing is lost by waiting."
            ) from None
        with contextlib.suppress(OSError):  # who holds it: a courtesy, may fail on a full disk
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}".encode())
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_store(
    client: Client,
    store: CohortStore,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None,
    force: bool,
    events: RunEvents | None,
    max_in_flight: int | None,
    retries: int,
    flush_seconds: float,
) -> RunSummary:
    manifest = Manifest(store.manifest_url, storage_options=store.storage_options)
    todo, skipped = select_subjects(store, manifest, cfg, subjects=subjects, force=force)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
    logger.info("run %s: %d to process, %d already done", run_id, len(todo), len(skipped))
    # Hashing the model folders once per run, not once per finished subject.
    common = {"run_id": run_id, "config": cfg.fingerprint(), "models": cfg.model_versions()}
    pending: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        last_flush = time.monotonic()
        if pending:
            manifest.upsert(pending)  # StoreError when the disk is full: rows stay pending
            pending.clear()

    def on_outcome(outcome: SubjectOutcome) -> None:
        pending.extend(outcome_rows(outcome, common=common))
        if time.monotonic() - last_flush > flush_seconds:
            try:
                flush()
            except StoreError as exc:  # maybe space comes back; the final flush decides
                logger.error("manifest not written, %d rows kept for later: %s", len(pending), exc)

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
            on_outcome=on_outcome,
        )
    except BaseException:
        try:
            flush()
        except StoreError as exc:  # keep the error that stopped the run
            logger.error("manifest not written on stopping: %s", exc)
        raise
    flush()  # raises StoreError (the manifest on disk stays whole) when the store is full
    return RunSummary(run_id, outcomes, skipped, time.perf_counter() - t0)
