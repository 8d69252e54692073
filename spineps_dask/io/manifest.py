"""The Parquet manifest: one row per (subject, phase), the source of truth for what is done.

Phases: ``ingest`` now; the runner adds ``semantic``, ``instance``, ... rows later with the same
columns. Rows are upserted by ``(subject, phase)``: a re-run replaces a subject's row, never adds
a second one. Writes go to a temporary file that is renamed over the manifest (readers never see
half a file), under an exclusive lock file so two ingests or runs on one machine do not lose each
other's rows. Remote manifests (``s3://``) are written with one ``put`` (atomic on object
stores) but cannot be locked: only one process (the driver) may write them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spineps_dask.errors import StoreError
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, local_path, redact_url
from spineps_dask.io.atomic import atomic_write

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
    """Read and upsert the manifest file at ``url`` (local path or fsspec URL)."""

    def __init__(self, url: str | os.PathLike, *, storage_options: dict | None = None) -> None:
        self.url = os.fspath(url)
        self._storage_options = dict(storage_options or {})

    def __repr__(self) -> str:
        return f"Manifest({redact_url(self.url)!r})"

    def read(self) -> pd.DataFrame:
        """All rows (an empty frame with the schema's columns when there is no manifest yet)."""
        try:
            if is_remote(self.url):
                import fsspec

                with fsspec.open(self.url, "rb", **self._storage_options) as fh:
                    table = pq.read_table(fh)
            else:
                table = pq.read_table(local_path(self.url))
        except FileNotFoundError:
            return SCHEMA.empty_table().to_pandas()
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(
                f"manifest {redact_url(self.url)} is not readable Parquet ({exc}); restore it or "
                "move it away to rebuild it from a fresh ingest"
            ) from exc
        return table.to_pandas()

    def rows(self, *, phase: str | None = None) -> dict[str, dict[str, Any]]:
        """Rows by subject (of one phase when given): the quick lookup for skip decisions."""
        df = self.read()
        if phase is not None:
            df = df[df["phase"] == phase]
        return {r["subject"]: r for r in df.to_dict("records")}

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """Insert rows, replacing existing ones with the same ``(subject, phase)``.

        A replaced row is replaced whole. Columns beyond the schema are kept (a later phase may
        add its own). Returns the frame that was written.

        Raises
        ------
        StoreError
            The manifest cannot be written (full or read-only disk); the file on disk is then
            the previous one, whole.
        """
        new = [dict(r) for r in rows]
        for row in new:
            missing = [c for c in KEY if not row.get(c)]
            if missing:
                raise StoreError(f"manifest rows need {KEY}; {row!r} lacks {missing}")
        if not new:
            return self.read()
        try:
            with self._locked():
                merged = {(r["subject"], r["phase"]): r for r in self.read().to_dict("records")}
                merged.update({(r["subject"], r["phase"]): r for r in new})
                table = _to_table([merged[k] for k in sorted(merged)])
                self._write(table)
        except OSError as exc:  # full or read-only disk: the old manifest is still whole
            where = redact_url(self.url)
            raise store_write_error(exc, f"the manifest ({len(new)} new rows)", where) from exc
        return table.to_pandas()

    def _write(self, table: pa.Table) -> None:
        if is_remote(self.url):
            import fsspec

            with fsspec.open(self.url, "wb", **self._storage_options) as fh:
                pq.write_table(table, fh)
            return
        atomic_write(local_path(self.url), lambda tmp: pq.write_table(table, tmp))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive lock: a thread lock (same process) plus ``flock`` on a sidecar file."""
        if is_remote(self.url):
            yield
            return
        path = local_path(self.url)
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
        path.parent.mkdir(parents=True, exist_ok=True)
        with tlock, open(path.with_name(path.name + ".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


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
