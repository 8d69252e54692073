"""A BIDS cohort into the store: discover scans, validate and ingest them (``export.py``: out).

Layers (style rule 1): ``discover_scans`` (folder -> scan list) -> ``ingest_scan`` (one scan ->
store + manifest row) -> ``ingest`` (all scans, thread pool, manifest upsert). One bad scan
becomes a ``failed`` manifest row with its reason; every other subject is still ingested.
`plan_ingest` (what to ingest, under which key) and `IngestRecord` (the rows, their manifest
writes and the summary) are shared with the cluster's ingest (`distributed.ingest`), which
runs ``ingest_scan`` on the workers instead of this thread pool.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spineps_dask.errors import InputError, SpinepsDaskError
from spineps_dask.io.bids import ScanName, parse_scan_name
from spineps_dask.io.integrity import intact
from spineps_dask.io.lock import INGEST_WAIT_S, writer_lock
from spineps_dask.io.manifest import make_row
from spineps_dask.io.names import IMAGE, PARTICIPANTS
from spineps_dask.io.nifti import load_volume
from spineps_dask.io.store import CohortStore
from spineps_dask.io.validate import ScanLimits, validate_scan

logger = logging.getLogger(__name__)

PHASE = "ingest"
FLUSH_ROWS = 64  # manifest rows written in batches: one Parquet rewrite per 64 scans


@dataclass(frozen=True)
class Scan:
    """One discovered scan: its subject key and file (``name`` None when the name is bad)."""

    subject: str
    path: Path
    name: ScanName | None = None
    error: str | None = None


@dataclass
class IngestSummary:
    """What one ``ingest`` call did, per subject."""

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def sha256sum(path: str | os.PathLike, *, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (scans can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def discover_scans(bids_dir: str | os.PathLike, *, suffix: str = "T2w") -> list[Scan]:
    """Scans ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` under ``bids_dir``, sorted by key.

    Each scan's key holds all its entities (``sub-001_ses-1_acq-lumbar_chunk-2``), so scans
    told apart by any entity are separate scans. A scan gets ``error`` set (and is never read)
    when its name is not BIDS, its subject or session disagrees with its folders, it is a
    symlink leading outside ``bids_dir``, it is not a regular file (a FIFO, a device, a
    folder), or several files have the same entities (the same scan as ``.nii`` and
    ``.nii.gz``, say).
    """
    root = Path(bids_dir).resolve()
    if not root.is_dir():
        raise InputError(f"cohort folder {bids_dir} does not exist or is not a folder")
    files = sorted(
        {*root.glob(f"sub-*/anat/*_{suffix}.nii*"), *root.glob(f"sub-*/ses-*/anat/*_{suffix}.nii*")}
    )
    scans = [_scan_of(p, root) for p in files if p.name.endswith((".nii", ".nii.gz"))]
    by_key: dict[str, list[Scan]] = {}
    for scan in scans:
        by_key.setdefault(scan.subject, []).append(scan)
    out: list[Scan] = []
    for key, group in sorted(by_key.items()):
        if len(group) > 1:
            names = ", ".join(str(s.path.relative_to(root)) for s in group)
            msg = (
                f"{len(group)} files are the same scan {key} (the same BIDS entities): {names}; "
                "keep one, or tell them apart with an entity such as acq-, run- or chunk-"
            )
            out.extend(Scan(key, s.path, s.name, msg) for s in group)
        else:
            out.extend(group)
    return out


def _scan_of(path: Path, root: Path) -> Scan:
    """Parse one candidate file into a Scan, recording (not raising) what is wrong with it.

    A scan with a usable name is recorded under its key whatever else is wrong with it
    (a link leading out, not a regular file), so its failed row says which subject it is.
    Nothing here opens the file: a FIFO or a device named like a scan would block a read.
    """
    rel = path.relative_to(root)
    try:
        name = parse_scan_name(path)
    except InputError as exc:
        return Scan(str(rel), path, error=str(exc))
    key = name.key
    folders = list(rel.parts[:-2])
    expected = [f"sub-{name.sub}"] + ([f"ses-{name.ses}"] if name.ses else [])
    if folders != expected:
        said, lies = "/".join(expected), "/".join(folders)
        return Scan(key, path, name, f"{rel}: file name says {said} but it lies in {lies}")
    try:
        real = path.resolve(strict=True)
    except OSError:
        return Scan(key, path, name, f"{rel} is a broken link")
    if not real.is_relative_to(root):
        return Scan(key, path, name, f"{rel} links outside the cohort folder (to {real})")
    odd = not_a_regular_file(real)
    if odd:
        return Scan(key, path, name, f"{rel} {odd}")
    return Scan(key, path, name)


def not_a_regular_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a scan without opening it (None: a regular file).

    Checked from ``stat`` alone, before any read: opening a FIFO blocks until something
    writes to it, and a device can be endless.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    kind = next((k for test, k in kinds.items() if test(mode)), "not a plain file")
    return f"is {kind}, not a regular file; refused without reading it"


def ingest_scan(
    scan: Scan, store: CohortStore, *, previous: dict | None, limits: ScanLimits | None = None
) -> dict[str, Any]:
    """Validate one scan and write it as ``<subject>/image``; return its manifest row.

    ``status`` is ``skipped`` when ``previous`` (the subject's last ingest row) was ok with the
    same checksum and the image is complete in the store; such rows are not re-written.
    """
    start = time.perf_counter()
    if scan.error:
        return make_row(scan.subject, "failed", source=str(scan.path), error=scan.error, step=PHASE)
    odd = not_a_regular_file(scan.path)
    if odd:  # before the checksum: reading a FIFO would block this ingest forever
        error = f"{scan.path.name} {odd}"
        return make_row(scan.subject, "failed", source=str(scan.path), error=error, step=PHASE)
    try:
        digest = sha256sum(scan.path)
        if (
            previous is not None
            and previous.get("status") == "ok"
            and previous.get("sha256") == digest
            and store.has_volume(scan.subject, IMAGE)
            and intact(store, scan.subject, [IMAGE], then="ingesting it again")
        ):
            return make_row(scan.subject, "skipped", source=str(scan.path), sha256=digest)
        limits = limits or ScanLimits()
        notes: list[str] = []  # geometry kept but worth a look: logged, and kept with the scan
        vol = load_volume(scan.path, max_bytes=limits.max_bytes, notes=notes)
        vol = validate_scan(vol, name=scan.path.name, limits=limits)
        if previous is not None:
            store.delete_subject(scan.subject)  # results of an older scan are stale now
        extra: dict[str, Any] = {"geometry_notes": notes} if notes else {}
        store.write_volume(scan.subject, IMAGE, vol, source=str(scan.path), sha256=digest, **extra)
    except (SpinepsDaskError, OSError) as exc:  # OSError: unreadable file, store unreachable
        logger.info("%s: %s", scan.subject, exc)  # the failed row (and `ingest`'s table) say it
        return make_row(scan.subject, "failed", source=str(scan.path), error=str(exc), step=PHASE)
    seconds = time.perf_counter() - start
    return make_row(
        scan.subject,
        "ok",
        source=str(scan.path),
        sha256=digest,
        shape=list(vol.shape),
        spacing=list(vol.spacing),
        orientation="".join(vol.orientation),
        dtype=str(vol.data.dtype),
        step=PHASE,
        seconds=seconds,
    )


def ingest(
    bids_dir: str | os.PathLike,
    store_url: str | os.PathLike | CohortStore,
    *,
    workers: int | None = None,
    suffix: str = "T2w",
    storage_options: dict | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    limits: ScanLimits | None = None,
) -> IngestSummary:
    """Ingest every scan of a BIDS cohort into the store and record it in the manifest.

    Re-running adds new subjects, re-ingests changed scans (checksum) and failed ones, and
    skips unchanged ones. It holds the store's lock (`writer_lock`): an ingest beside a run
    is refused at once (it would replace scans the run is segmenting), and ingests of one
    store wait for each other.
    ``store_url`` may be an open `CohortStore` (its own storage options then apply).
    ``progress`` is called with each finished row (the CLI's progress bar); ``limits`` what a
    usable scan is (spacing, size: `ScanLimits`). The scans are read on this machine, by
    ``workers`` threads; `spineps-dask ingest` and `run` read them on a cluster's workers
    (`distributed.ingest.ingest_on_cluster`: the same checks, rows and store).
    """
    start = time.perf_counter()
    scans = discover_scans(bids_dir, suffix=suffix)
    store = _writable(store_url, storage_options)
    with writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S):
        scans, previous = plan_ingest(bids_dir, store, scans)
        with IngestRecord(store, progress=progress, every_rows=FLUSH_ROWS) as record:
            _ingest_scans(scans, store, previous, record, workers=workers, limits=limits)
    return record.summary(start)


def _ingest_scans(
    scans: list[Scan],
    store: CohortStore,
    previous: dict[str, dict[str, Any]],
    record: IngestRecord,
    *,
    workers: int | None,
    limits: ScanLimits | None,
) -> None:
    """Ingest ``scans`` on a thread pool, each row into ``record`` as its scan finishes."""
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(ingest_scan, s, store, previous=previous.get(s.subject), limits=limits)
            for s in scans
        ]
        for fut in as_completed(futures):
            record.add([fut.result()])


def plan_ingest(
    bids_dir: str | os.PathLike, store: CohortStore, scans: list[Scan]
) -> tuple[list[Scan], dict[str, dict[str, Any]]]:
    """What an ingest does, inside its lock: copies ``participants.tsv``, reads the previous
    ingest rows once (`previous_rows`) and keeps the keys scans were recorded under
    (`keep_recorded_keys`). Returns the scans to ingest and the previous rows."""
    copy_participants(bids_dir, store)
    previous = previous_rows(store)
    return keep_recorded_keys(scans, previous), previous


class IngestRecord:
    """The rows of one ingest, as its scans finish: each passed to ``progress``, written to
    the manifest every ``every_rows`` rows or ``every_seconds`` seconds (skipped scans have
    nothing to write), the rest on leaving the ``with`` block, an interrupted ingest
    included, so the rows of finished scans survive; then `summary`."""

    def __init__(
        self,
        store: CohortStore,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        every_rows: int | None = None,
        every_seconds: float | None = None,
    ) -> None:
        self.manifest = store.manifest
        self.progress = progress
        self.every_rows, self.every_seconds = every_rows, every_seconds
        self.rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def __enter__(self) -> IngestRecord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Record finished scans' rows (one scan's, or a batch's)."""
        self.rows += rows
        self.pending += [r for r in rows if r["status"] != "skipped"]
        due_rows = self.every_rows is not None and len(self.pending) >= self.every_rows
        due_time = (
            self.every_seconds is not None and time.monotonic() - self.last > self.every_seconds
        )
        if due_rows or due_time:
            self.flush()
        if self.progress is not None:
            for row in rows:
                self.progress(row)

    def flush(self) -> None:
        """Write the pending rows, one per subject (`merge_duplicates`)."""
        self.manifest.upsert(merge_duplicates(self.pending))
        self.pending.clear()
        self.last = time.monotonic()

    def summary(self, start: float) -> IngestSummary:
        """What the rows say per subject (`summarise`), timed from ``start``, and logged."""
        summary = summarise(self.rows)
        summary.seconds = time.perf_counter() - start
        logger.info(
            "ingest: %d ingested, %d skipped, %d failed in %.1f s",
            len(summary.ingested),
            len(summary.skipped),
            len(summary.failed),
            summary.seconds,
        )
        return summary


def copy_participants(bids_dir: str | os.PathLike, store: CohortStore) -> None:
    """The cohort's ``participants.tsv``, when it has one, copied into the store (joined to
    the cohort's tables by `open_cohort`). Inside the ingest's lock."""
    participants = Path(bids_dir) / PARTICIPANTS
    if participants.is_file():
        store.write_root_file(PARTICIPANTS, participants.read_bytes())


def previous_rows(store: CohortStore) -> dict[str, dict[str, Any]]:
    """Each subject's last ingest row, only what `ingest_scan` compares (status, checksum)
    and what `keep_recorded_keys` needs (source): one read, vectorised, for the skip
    decisions of 100 000 scans."""
    df = store.manifest.read(phase=PHASE, columns=["status", "sha256", "source"])
    return {
        s: {"status": st, "sha256": sha, "source": src}
        for s, st, sha, src in df[["subject", "status", "sha256", "source"]].itertuples(index=False)
    }


def keep_recorded_keys(scans: list[Scan], previous: dict[str, dict]) -> list[Scan]:
    """Scans ingested under an older, shorter key keep it (stores from before keys held
    ``acq-``, ``run-``, ``chunk-``: ``sub-001`` for ``sub-001_acq-sag_T2w.nii.gz``), so an
    existing store is not ingested and segmented a second time under the new key."""
    recorded = {
        row["source"]: key
        for key, row in previous.items()
        if row.get("status") == "ok" and row.get("source")
    }
    keys = {s.subject for s in scans}
    out = []
    for scan in scans:
        old = recorded.get(str(scan.path))
        if scan.error is None and old and old != scan.subject and old not in keys:
            scan = replace(scan, subject=old)
        out.append(scan)
    return out


def _writable(store: str | os.PathLike | CohortStore, options: dict | None) -> CohortStore:
    if isinstance(store, CohortStore):
        return store
    return CohortStore(store, mode="a", storage_options=options)


def merge_duplicates(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per subject: duplicate-key scans share one failed row naming all files."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["subject"] in out:
            out[row["subject"]]["source"] += f";{row['source']}"
        else:
            out[row["subject"]] = dict(row)
    return list(out.values())


def summarise(rows: list[dict[str, Any]]) -> IngestSummary:
    """What the rows say per subject: ingested, skipped or failed (with the error)."""
    summary = IngestSummary()
    for row in sorted(rows, key=lambda r: r["subject"]):
        if row["status"] == "ok":
            summary.ingested.append(row["subject"])
        elif row["status"] == "skipped":
            summary.skipped.append(row["subject"])
        else:
            summary.failed[row["subject"]] = row["error"]
    return summary
