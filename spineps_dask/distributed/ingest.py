"""Ingest on the cluster: workers read their scans and write the store; the driver lists and plans.

The driver discovers the scans (one listing of the cohort folder, nothing opened), reads the
previous ingest rows once, and hands the scans out in small batches, a bounded number at a
time. Each task runs `ingest_scan` on its batch where it runs, with the same checks and the
same failed rows as the thread pool of `io.cohort.ingest` (`plan_ingest` and `IngestRecord`
are shared with it); the driver only collects the rows and appends them to the manifest
every ``flush_seconds``. Reference masks go the same way (`ingest_references_on_cluster`:
one listing of the store's subjects, `ingest_subject_references` on the workers). For a
cohort on object storage, every worker reads its own files instead of one machine reading
them all (issue 19). `run` (`batch.run_batch`) and `spineps-dask ingest`
(`batch.run_ingest`) both ingest this way.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from distributed import Client, as_completed

from spineps_dask.io.cohort import (
    PHASE,
    IngestRecord,
    IngestSummary,
    Scan,
    discover_scans,
    ingest_scan,
    plan_ingest,
)
from spineps_dask.io.lock import INGEST_WAIT_S, writer_lock
from spineps_dask.io.manifest import make_row
from spineps_dask.io.references import (
    ReferenceOutcome,
    ReferenceSummary,
    ingest_subject_references,
    summarise_references,
)
from spineps_dask.io.store import CohortStore
from spineps_dask.io.validate import ScanLimits

logger = logging.getLogger(__name__)

#: Scans (or subjects' references) per task: enough to keep the scheduler's per-task cost
#: small beside reading them.
BATCH = 8

T = TypeVar("T")


def ingest_batch(
    scans: list[Scan],
    store: CohortStore,
    previous: dict[str, dict[str, Any]],
    limits: ScanLimits | None,
) -> list[dict[str, Any]]:
    """The task: `ingest_scan` on each scan of the batch, on the worker that runs it."""
    return [ingest_scan(s, store, previous=previous.get(s.subject), limits=limits) for s in scans]


def references_batch(
    subjects: list[str], root: Path, store: CohortStore, limits: ScanLimits
) -> list[ReferenceOutcome]:
    """The task: `ingest_subject_references` for each subject of the batch."""
    return [out for s in subjects if (out := ingest_subject_references(root, store, s, limits))]


def ingest_on_cluster(
    client: Client,
    bids_dir: str | os.PathLike,
    store: CohortStore,
    *,
    suffix: str = "T2w",
    limits: ScanLimits | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    batch: int = BATCH,
    max_in_flight: int | None = None,
    flush_seconds: float = 10.0,
    scans: list[Scan] | None = None,
) -> IngestSummary:
    """`io.cohort.ingest` with the scans read and written by the cluster's workers.

    Holds the store's lock as an ingest does; ``max_in_flight`` batches are in the cluster at
    once (default four per worker). A batch whose task fails beyond its retry (a lost worker)
    becomes failed rows for its scans, so they are ingested again next time. ``scans``: the
    caller's own `discover_scans` of ``bids_dir`` (listed here otherwise).
    """
    start = time.perf_counter()
    if scans is None:
        scans = discover_scans(bids_dir, suffix=suffix)
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        scans, previous = plan_ingest(bids_dir, store, scans)

        def args(part: list[Scan]) -> tuple[Any, ...]:
            mine = {s.subject: previous[s.subject] for s in part if s.subject in previous}
            return store, mine, limits

        with IngestRecord(store, progress=progress, every_seconds=flush_seconds) as record:
            parts = _batches(scans, batch, key=lambda s: s.subject)
            for part, future in _bounded(client, ingest_batch, parts, args, max_in_flight):
                record.add(_result(future, part))
    return record.summary(start)


class IngestEvents:
    """Progress hooks of `ingest_inputs` (the CLI prints them). No-ops here."""

    def scan_ingested(self, row: dict[str, Any]) -> None: ...
    def ingested(self, summary: IngestSummary) -> None: ...
    def references_ingested(self, found: ReferenceSummary) -> None: ...


def ingest_inputs(
    client: Client,
    store: CohortStore,
    *,
    bids: str | os.PathLike | None = None,
    references: str | os.PathLike | None = None,
    suffix: str = "T2w",
    limits: ScanLimits | None = None,
    events: IngestEvents | None = None,
    scans: list[Scan] | None = None,
) -> tuple[IngestSummary | None, ReferenceSummary | None]:
    """The new and changed scans of ``bids``, then the reference masks of ``references``
    (each when given), read and written by ``client``'s workers (issue 19): what `run`,
    `ingest` and `sweep` ingest with. ``scans``: the caller's listing of ``bids``."""
    events = events or IngestEvents()
    summary = refs = None
    if bids is not None:
        summary = ingest_on_cluster(
            client,
            bids,
            store,
            suffix=suffix,
            limits=limits,
            progress=events.scan_ingested,
            scans=scans,
        )
        events.ingested(summary)
    if references is not None:
        refs = ingest_references_on_cluster(client, references, store, limits=limits)
        events.references_ingested(refs)
    return summary, refs


def ingest_references_on_cluster(
    client: Client,
    derivatives: str | os.PathLike,
    store: CohortStore,
    *,
    limits: ScanLimits | None = None,
    batch: int = BATCH,
    max_in_flight: int | None = None,
) -> ReferenceSummary:
    """`io.references.ingest_references` with the masks read and written by the cluster's
    workers: the driver lists the store's subjects (one listing) and hands them out in
    batches. A batch whose task fails beyond its retry (a lost worker) fails its subjects'
    references, with the reason; the next reference ingest reads them again."""
    limits = limits or ScanLimits()
    root = Path(derivatives).absolute()  # the workers' working folder may be another
    outcomes: list[ReferenceOutcome] = []
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        parts = _batches(store.subjects(), batch)
        for part, future in _bounded(
            client, references_batch, parts, lambda _: (root, store, limits), max_in_flight
        ):
            outcomes += _reference_result(future, part)
    return summarise_references(outcomes)


def _bounded(
    client: Client,
    task: Callable[..., Any],
    parts: Iterable[list[Any]],
    args: Callable[[list[Any]], Sequence[Any]],
    max_in_flight: int | None,
) -> Iterator[tuple[list[Any], Any]]:
    """``(part, future)`` of ``task(part, *args(part))`` as each finishes, with at most
    ``max_in_flight`` parts in the cluster (default four per worker); each future is
    released once the caller has its result."""
    parts = iter(parts)
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    running = as_completed()
    submitted: dict[str, list[Any]] = {}
    name = getattr(task, "__name__", "ingest").replace("_", "-")

    def submit(n: int) -> None:
        for part in itertools.islice(parts, n):
            first = getattr(part[0], "subject", part[0])
            future = client.submit(
                task,
                part,
                *args(part),
                key=f"{name}-{first}-{os.urandom(3).hex()}",
                retries=1,
            )
            submitted[str(future.key)] = part
            running.add(future)

    submit(max_in_flight or 4 * n_workers)
    for future in running:
        part = submitted.pop(str(future.key))
        yield part, future
        future.release()
        submit(1)


def _batches(
    items: list[T], size: int, *, key: Callable[[T], Any] | None = None
) -> Iterator[list[T]]:
    """Batches of about ``size`` items; items of one ``key`` never split (the scans of one
    subject key, duplicates refused together, so their one failed row is written whole)."""
    part: list[T] = []
    for _, group in itertools.groupby(items, key=key):
        part += list(group)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def _result(future: Any, part: list[Scan]) -> list[dict[str, Any]]:
    """The batch's rows, or a failed row per scan when its task was lost."""
    try:
        rows: list[dict[str, Any]] = future.result()
        return rows
    except Exception as exc:
        message = f"the ingest task was lost ({type(exc).__name__}: {exc}); ingest again"
        logger.warning("%d scans from %s: %s", len(part), part[0].subject, message)
        return [
            make_row(s.subject, "failed", source=str(s.path), error=message, step=PHASE)
            for s in part
        ]


def _reference_result(future: Any, part: list[str]) -> list[ReferenceOutcome]:
    """The batch's outcomes, or a failed one per subject when its task was lost."""
    try:
        outcomes: list[ReferenceOutcome] = future.result()
        return outcomes
    except Exception as exc:
        message = (
            f"the reference ingest task was lost ({type(exc).__name__}: {exc}); "
            "ingest the references again"
        )
        logger.warning("references of %d subjects from %s: %s", len(part), part[0], message)
        return [(s, "failed", message) for s in part]
