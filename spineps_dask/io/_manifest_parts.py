"""The manifest's files: a base Parquet file plus append-only parts, and when to merge them.

A write adds one part (``<stem>/part-<ns>-<uid>-g<gen>-r<rows>.parquet``) holding only its own
rows, so a flush costs what it writes, not the whole history (issue 19: rewriting one file
took 4.4 s per flush at 100 000 subjects). Order decides which row of a ``(subject, phase)``
wins: the base first, then parts by (time, uid, generation). Parts are merged in runs of the
newest ones of one size tier (`merge_plan`), so every row is rewritten O(log rows) times, and
folded into the base when they hold a quarter of its rows; the number of parts stays small.

Everything here works on a local folder (atomic renames, `atomic_write`) and on object stores
through fsspec (one ``put`` per file, atomic there).
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spineps_dask.io._urls import is_remote, local_path
from spineps_dask.io.atomic import atomic_write

#: Parts of one size tier merged into one once there are this many of them.
FANOUT = 8
#: Rows of the smallest tier: parts below ``TIER_ROWS * FANOUT`` rows are tier 0.
TIER_ROWS = 1024
#: Parts are folded into the base once they hold ``1 / BASE_RATIO`` of its rows: the base is
#: rewritten after a quarter of its size was written again, a bounded cost per row written.
BASE_RATIO = 4

_PART = re.compile(r"^part-(\d{20})-([0-9a-f]+)-g(\d+)-r(\d+)\.parquet$")


@dataclass(frozen=True, order=True)
class Part:
    """One part file; ordered as it is applied (older first)."""

    ns: int
    uid: str
    gen: int
    rows: int

    @property
    def name(self) -> str:
        return f"part-{self.ns:020d}-{self.uid}-g{self.gen}-r{self.rows}.parquet"

    @classmethod
    def parse(cls, name: str) -> Part | None:
        """The part named ``name``, or None for anything else (temporary files start with .)."""
        m = _PART.match(name)
        return None if m is None else cls(int(m[1]), m[2], int(m[3]), int(m[4]))


def new_part(rows: int, after: Sequence[Part]) -> Part:
    """A name for a new part that sorts after every part in ``after`` even if the clock
    stepped back (names are chosen under the manifest's lock)."""
    newest = max((p.ns for p in after), default=0)
    return Part(max(time.time_ns(), newest + 1), uuid.uuid4().hex[:12], 0, rows)


def tier(rows: int) -> int:
    """Size tier of a part: 0 below ``TIER_ROWS * FANOUT`` rows, one more per factor FANOUT."""
    return max(0, int(math.log(max(rows, 1) / TIER_ROWS, FANOUT)))


def merge_plan(parts: Sequence[Part], base_rows: int) -> tuple[list[Part], bool]:
    """The newest parts to merge now (empty: none) and whether they fold into the base.

    The smallest tier ``t`` whose newest run of parts (tier <= t, a suffix of ``parts``) has
    `FANOUT` parts is merged into one part; when that run is every part and they hold at least
    ``base_rows / BASE_RATIO`` rows, they go into the base instead. Merging a suffix keeps the
    order: the merged part takes its newest member's place.
    """
    parts = sorted(parts)
    if not parts:
        return [], False
    for t in range(tier(max(p.rows for p in parts)) + 1):
        start = len(parts)
        while start > 0 and tier(parts[start - 1].rows) <= t:
            start -= 1
        run = parts[start:]
        if start == 0 and sum(p.rows for p in run) * BASE_RATIO >= base_rows:
            return run, True
        if len(run) >= FANOUT:
            return run, False
    return [], False


def merged_part(run: Sequence[Part], rows: int) -> Part:
    """The part replacing ``run``: its newest member's place, one generation later."""
    last = max(run)
    return Part(last.ns, last.uid, max(p.gen for p in run) + 1, rows)


class Files:
    """The base file and the parts folder of one manifest, local or on an object store."""

    def __init__(self, url: str, storage_options: dict[str, Any]) -> None:
        self.base = url
        stem = url[: -len(".parquet")] if url.endswith(".parquet") else url + ".parts"
        self.folder = stem
        self.remote = is_remote(url)
        self._options = storage_options
        self._fs: Any = None

    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, _ = fsspec.core.url_to_fs(self.base, **self._options)
        return self._fs

    def part_path(self, part: Part) -> str:
        return self.folder.rstrip("/") + "/" + part.name

    def parts(self) -> list[Part]:
        """Parts in the folder, in the order they apply (one listing, never cached)."""
        if self.remote:
            fs = self.fs()
            fs.invalidate_cache(self.folder)  # another writer's parts must show
            try:
                names = [p.rsplit("/", 1)[-1] for p in fs.ls(self.folder, detail=False)]
            except FileNotFoundError:
                return []
        else:
            try:
                names = os.listdir(local_path(self.folder))
            except FileNotFoundError:
                return []
        return sorted(p for n in names if (p := Part.parse(n)) is not None)

    def read(self, path: str) -> pa.Table:
        """One file (FileNotFoundError when it is gone)."""
        if self.remote:
            with self.fs().open(path, "rb") as fh:
                return pq.read_table(fh)
        return pq.read_table(local_path(path))

    def base_rows(self) -> int:
        """Rows of the base file from its footer alone (0 when there is none)."""
        try:
            if self.remote:
                with self.fs().open(self.base, "rb") as fh:
                    return int(pq.read_metadata(fh).num_rows)
            return int(pq.read_metadata(local_path(self.base)).num_rows)
        except FileNotFoundError:
            return 0

    def write(self, path: str, table: pa.Table) -> None:
        """Write ``path`` whole or not at all: a rename locally, one ``put`` remotely."""
        if self.remote:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            self.fs().pipe_file(path, sink.getvalue().to_pybytes())
            return
        atomic_write(local_path(path), lambda tmp: pq.write_table(table, tmp))

    def delete(self, paths: Sequence[str]) -> None:
        """Remove merged parts (already part of a newer file; a reader may still hold them)."""
        if not paths:
            return
        if self.remote:
            self.fs().rm(list(paths))
            return
        for path in paths:
            local_path(path).unlink(missing_ok=True)
