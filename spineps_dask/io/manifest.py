"""The Parquet manifest: one row per (subject, phase), the source of truth for what is done.

Phases: ``ingest``, then the runner's ``segment``, ``prepare``, ``semantic``, ... rows with the
same columns. Rows are upserted by ``(subject, phase)``: the newest row of a key wins on read,
a re-run never adds a second one.

Layout (issue 19): a base file (``manifest.parquet``) plus append-only parts beside it
(``manifest/part-*.parquet``, `_manifest_parts`). A write adds one part holding its own rows,
so a flush costs what it writes, not the history; parts are merged now and then, and folded
into the base once they hold a quarter of its rows. A manifest written before parts existed
is the base of this layout: it is read as it is and its first writes add parts beside it.

Every file is written whole or not at all (a rename locally, one ``put`` on object stores), so
readers never see half a file; a reader that finds a part merged away meanwhile reads again.
Local writers hold an exclusive lock file, so two ingests or runs on one machine do not lose
each other's rows; remote manifests (``s3://``) cannot be locked: only one process (the
driver) may write them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spineps_dask.errors import StoreError
from spineps_dask.io import _manifest_parts as _parts
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, local_path, redact_url

logger = logging.getLogger(__name__)

STATUSES = ("ok", "failed", "skipped")
KEY = ("subject", "phase")
SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("phase", pa.string()),
        ("status", pa.string()),
        ("source", pa.string()),
        ("sha256", pa.string()),
        ("shape", pa.list_(pa.int64())),
        ("spacing", pa.list_(pa.float64())),
        ("orientation", pa.string()),
        ("dtype", pa.string()),
        ("error", pa.string()),
        ("step", pa.string()),
        ("seconds", pa.float64()),
        ("timings", pa.string()),  # JSON object {step: seconds}, for phases with several steps
        ("updated", pa.timestamp("us", tz="UTC")),
    ]
)
COLUMNS = tuple(SCHEMA.names)
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
_READ_TRIES = 5  # reads that find a part merged away before giving up


def make_row(subject: str, status: str, *, phase: str = "ingest", **fields: Any) -> dict[str, Any]:
    """A manifest row with every column present and ``updated`` set to now.

    Raises
    ------
    StoreError
        ``status`` is not one of ``ok``, ``failed``, ``skipped``.
    """
    if status not in STATUSES:
        raise StoreError(f"manifest status {status!r} is not one of {STATUSES}")
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    timings = fields.pop("timings", None)
    if isinstance(timings, Mapping):
        timings = json.dumps({k: round(float(v), 3) for k, v in timings.items()})
    row.update(fields, subject=subject, phase=phase, status=status, timings=timings)
    row["updated"] = pd.Timestamp(datetime.now(UTC))
    return row


class Manifest:
    """Read and upsert the manifest at ``url`` (local path or fsspec URL).

    ``url`` names the base file (``<store>/manifest.parquet``); parts go into the folder
    beside it without the suffix (``<store>/manifest/``, see `_manifest_parts`).
    """

    def __init__(self, url: str | os.PathLike, *, storage_options: dict | None = None) -> None:
        self.url = os.fspath(url)
        self._storage_options = dict(storage_options or {})
        self._files = _parts.Files(self.url, self._storage_options)
        self._base_rows: int | None = None  # read from the base's footer once per instance

    def __repr__(self) -> str:
        return f"Manifest({redact_url(self.url)!r})"

    def read(
        self, *, phase: str | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """All rows, latest per ``(subject, phase)``, sorted by them (an empty frame with the
        schema's columns when there is no manifest yet).

        ``phase`` keeps the rows of one phase and ``columns`` only those columns (plus the
        key): what a driver needs at 100 000 subjects without converting the rest.
        """
        table = self._read_table(phase)
        if columns is not None:
            keep = [*KEY, *(c for c in columns if c not in KEY)]
            table = table.select([c for c in keep if c in table.column_names])
        return table.to_pandas()

    def rows(self, *, phase: str | None = None) -> dict[str, dict[str, Any]]:
        """Rows by subject (of one phase when given): the quick lookup for skip decisions."""
        df = self.read(phase=phase)
        return {r["subject"]: r for r in df.to_dict("records")}

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """Insert rows, replacing existing ones with the same ``(subject, phase)``.

        A replaced row is replaced whole (the newest row of a key wins on read). Columns beyond
        the schema are kept (a later phase may add its own). The rows are written as one new
        part, so the cost is that of the rows given, whatever the manifest holds; now and then
        parts are merged (`compact` merges all). Returns the frame of the rows written.

        Raises
        ------
        StoreError
            The manifest cannot be written (full or read-only disk), or its base file is not
            Parquet; what was on disk before is then still whole.
        """
        new = [dict(r) for r in rows]
        for row in new:
            missing = [c for c in KEY if not row.get(c)]
            if missing:
                raise StoreError(f"manifest rows need {KEY}; {row!r} lacks {missing}")
        latest = {(r["subject"], r["phase"]): r for r in new}  # the last of a key in one call
        table = _to_table([latest[k] for k in sorted(latest)])
        if not new:
            return table.to_pandas()
        where = redact_url(self.url)
        try:
            with self._locked():
                base_rows = self._check_base()
                existing = self._files.parts()
                part = _parts.new_part(table.num_rows, existing)
                self._files.write(self._files.part_path(part), table)
                try:
                    self._merge([*existing, part], base_rows)
                except OSError as exc:  # the rows are in their part; merging waits for space
                    logger.warning("manifest %s: parts not merged (%s); retried later", where, exc)
        except OSError as exc:  # full or read-only disk: what was written stays whole
            raise store_write_error(exc, f"the manifest ({len(new)} new rows)", where) from exc
        return table.to_pandas()

    def compact(self) -> int:
        """Fold every part into the base file; returns the rows it holds (one per key)."""
        try:
            with self._locked():
                self._check_base()
                parts = self._files.parts()
                if parts:
                    self._fold(parts, into_base=True)
                return self._check_base()
        except OSError as exc:
            where = redact_url(self.url)
            raise store_write_error(exc, "the manifest (compacting)", where) from exc

    # -- files -------------------------------------------------------------------------------

    def _read_table(self, phase: str | None) -> pa.Table:
        """Base then parts, latest row per key. A part that vanished between the listing and
        its read was merged meanwhile (into a file read already or not): read again."""
        for _ in range(_READ_TRIES):
            parts = self._files.parts()
            tables = [t for t in [self._read_base()] if t is not None]
            try:
                tables += [self._files.read(self._files.part_path(p)) for p in parts]
            except FileNotFoundError:
                continue
            return _latest(tables, phase)
        raise StoreError(
            f"manifest {redact_url(self.url)} kept changing while it was read "
            f"({_READ_TRIES} tries); try again"
        )

    def _read_base(self) -> pa.Table | None:
        try:
            return self._files.read(self._files.base)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            raise _unreadable(self.url, exc) from exc

    def _check_base(self) -> int:
        """Rows in the base file, from its footer: a base that is not Parquet is refused
        before anything is added to it (once per instance; merges keep the count)."""
        if self._base_rows is None:
            try:
                self._base_rows = self._files.base_rows()
            except pa.ArrowInvalid as exc:
                raise _unreadable(self.url, exc) from exc
        return self._base_rows

    def _merge(self, parts: list[_parts.Part], base_rows: int) -> None:
        """Merge runs of parts as `merge_plan` says, until it says nothing more."""
        while True:
            run, into_base = _parts.merge_plan(parts, base_rows)
            if not run:
                return
            merged = self._fold(run, into_base=into_base)
            if into_base:
                return
            parts = sorted({*parts} - {*run} | {merged})

    def _fold(self, run: list[_parts.Part], *, into_base: bool) -> _parts.Part:
        """Write ``run`` (and the base, ``into_base``) as one file, then delete ``run``."""
        files = self._files
        tables = [files.read(files.part_path(p)) for p in run]
        if into_base:
            tables = [t for t in [self._read_base()] if t is not None] + tables
        table = _latest(tables, None)
        merged = _parts.merged_part(run, table.num_rows)
        files.write(files.base if into_base else files.part_path(merged), table)
        if into_base:
            self._base_rows = table.num_rows
        files.delete([files.part_path(p) for p in run])
        return merged

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive lock: a thread lock (same process) plus ``flock`` on a sidecar file.

        On an object store only the thread lock: one process (the driver) writes there.
        """
        key = self.url if is_remote(self.url) else str(local_path(self.url).resolve())
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault(key, threading.Lock())
        if is_remote(self.url):
            with tlock:
                yield
            return
        path = local_path(self.url)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tlock, open(path.with_name(path.name + ".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _unreadable(url: str, exc: BaseException) -> StoreError:
    return StoreError(
        f"manifest {redact_url(url)} is not readable Parquet ({exc}); restore it or "
        "move it away to rebuild it from a fresh ingest"
    )


def _latest(tables: list[pa.Table], phase: str | None) -> pa.Table:
    """The rows of ``tables`` (oldest first), the last per ``(subject, phase)`` kept, sorted
    by key, the schema's columns first (typed even when absent) then the others by name."""
    if phase is not None:
        tables = [t.filter(pc.equal(t["phase"], phase)) for t in tables]
    tables = [t for t in tables if t.num_rows] or [SCHEMA.empty_table()]
    table = pa.concat_tables(tables, promote_options="permissive")
    keys = table.select(list(KEY)).to_pandas()
    stale = keys.duplicated(list(KEY), keep="last").to_numpy()
    if stale.any():
        table = table.filter(pa.array(~stale))
    table = table.sort_by([(k, "ascending") for k in KEY])
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    extra = sorted(set(table.column_names) - set(COLUMNS))
    return table.select([*COLUMNS, *extra])


def _to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Rows -> a table with the schema's columns (typed) followed by any extra columns."""
    table = pa.Table.from_pylist(
        [{c: _none_if_nan(r.get(c)) for c in COLUMNS} for r in records], schema=SCHEMA
    )
    extra = sorted({c for r in records for c in r} - set(COLUMNS))
    for col in extra:
        table = table.append_column(col, pa.array([_none_if_nan(r.get(col)) for r in records]))
    return table


def _none_if_nan(value: Any) -> Any:
    """Pandas reads missing floats back as NaN; keep them as nulls."""
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "tolist") and not isinstance(value, str):
        return value.tolist()
    return value
