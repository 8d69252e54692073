"""Ingest on the cluster: workers read their scans and write the store; the driver lists and plans.

The driver discovers the scans (one listing of the cohort folder, nothing opened), reads the
previous ingest rows once, and hands the scans out in small batches, a bounded number at a
time. Each task runs `ingest_scan` on its batch where it runs, with the same checks and the
same failed rows as the driver's thread pool (`io.cohort.ingest`); the driver only collects
the rows and appends them to the manifest every ``flush_seconds``. For a cohort on object
storage, every worker reads its own scans instead of one machine reading them all (issue 19).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from distributed import Client, as_completed

from spineps_dask.io.cohort import (
    PHASE,
    IngestSummary,
    Scan,
    copy_participants,
    discover_scans,
    ingest_scan,
    keep_recorded_keys,
    merge_duplicates,
    previous_rows,
    summarise,
)
from spineps_dask.io.lock import INGEST_WAIT_S, writer_lock
from spineps_dask.io.manifest import make_row
from spineps_dask.io.store import CohortStore
from spineps_dask.io.validate import ScanLimits

logger = logging.getLogger(__name__)

#: Scans per task: enough to keep the scheduler's per-task cost small beside reading them.
BATCH = 8


def ingest_batch(
    scans: list[Scan],
    store: CohortStore,
    previous: dict[str, dict[str, Any]],
    limits: ScanLimits | None,
) -> list[dict[str, Any]]:
    """The task: `ingest_scan` on each scan of the batch, on the worker that runs it."""
    return [ingest_scan(s, store, previous=previous.get(s.subject), limits=limits) for s in scans]


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
) -> IngestSummary:
    """`io.cohort.ingest` with the scans read and written by the cluster's workers.

    Holds the store's lock as an ingest does; ``max_in_flight`` batches are in the cluster at
    once (default four per worker). A batch whose task fails beyond its retry (a lost worker)
    becomes failed rows for its scans, so they are ingested again next time.
    """
    start = time.perf_counter()
    scans = discover_scans(bids_dir, suffix=suffix)
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        copy_participants(bids_dir, store)
        previous = previous_rows(store)
        scans = keep_recorded_keys(scans, previous)
        batches = iter(_batches(scans, batch))
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        rows: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        last = time.monotonic()
        running = as_completed()
        submitted: dict[str, list[Scan]] = {}

        def submit(n: int) -> None:
            for part in itertools.islice(batches, n):
                future = client.submit(
                    ingest_batch,
                    part,
                    store,
                    {s.subject: previous[s.subject] for s in part if s.subject in previous},
                    limits,
                    key=f"ingest-{part[0].subject}-{os.urandom(3).hex()}",
                    retries=1,
                )
                submitted[str(future.key)] = part
                running.add(future)

        submit(max_in_flight or 4 * n_workers)
        try:
            for future in running:
                part = submitted.pop(str(future.key))
                got = _result(future, part)
                future.release()
                submit(1)
                rows += got
                pending += [r for r in got if r["status"] != "skipped"]
                if progress is not None:
                    for row in got:
                        progress(row)
                if time.monotonic() - last > flush_seconds:
                    store.manifest.upsert(merge_duplicates(pending))
                    pending.clear()
                    last = time.monotonic()
        finally:  # rows of finished scans survive an interrupted ingest
            store.manifest.upsert(merge_duplicates(pending))
    summary = summarise(rows)
    summary.seconds = time.perf_counter() - start
    logger.info(
        "ingest on the cluster: %d ingested, %d skipped, %d failed in %.1f s",
        len(summary.ingested),
        len(summary.skipped),
        len(summary.failed),
        summary.seconds,
    )
    return summary


def _batches(scans: list[Scan], size: int) -> Iterator[list[Scan]]:
    """Batches of about ``size`` scans; the scans of one subject key (duplicates, refused
    together) never split, so their one failed row is written whole."""
    part: list[Scan] = []
    for _, group in itertools.groupby(scans, key=lambda s: s.subject):
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
