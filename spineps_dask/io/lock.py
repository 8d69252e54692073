"""One writer per store at a time: an exclusive lock on a file in the store folder.

Two drivers on one store would both take the same unfinished subjects and write the same
arrays; an ingest beside a run would replace a scan while the run segments the old one (the
run then marks masks of the old scan done). So every writer of a store holds this lock: `run`
(for the whole run, its own ingest included), `ingest`, reference ingest and `verify`.
Local stores use an ``flock`` on ``<store>/.run.lock``, released by the OS if the process
dies; object stores cannot be locked this way, so there only one writer may run (README).

The lock file says who holds it (``run pid 12 on host since ...``). A writer that finds it
held stops at once with that name, except that an ingest waits (up to `INGEST_WAIT_S`) while
the holder is another ingest: ingests are short, and two of them may fill one store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import IO

from spineps_dask.errors import StoreError
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, local_path, redact_url
from spineps_dask.io.names import RUN_LOCK
from spineps_dask.io.store import CohortStore

#: How long an ingest waits for another ingest of the same store to finish.
INGEST_WAIT_S = 600.0
#: Holders that a waiting writer may wait for (short writers); anything else refuses at once.
_SHORT = ("ingest",)
_held = threading.local()  # lock files this thread holds: nested writers pass through


def _held_paths() -> set[str]:
    if not hasattr(_held, "paths"):
        _held.paths = set()
    paths: set[str] = _held.paths
    return paths


@contextlib.contextmanager
def run_lock(store: CohortStore, *, purpose: str = "run", wait: float = 0.0) -> Iterator[None]:
    """Hold the store's lock inside the ``with`` block, as ``purpose`` (``run``, ``ingest``...).

    Exclusive even within one thread: a second ``run_lock`` on the same store fails while the
    first is held (see `writer_lock` for writers that may run inside a held lock).

    Parameters
    ----------
    wait
        Seconds to wait while the holder is a short writer (an ingest); 0 refuses at once.

    Raises
    ------
    StoreError
        Another process holds it (the message names it, as far as it wrote its name), or the
        lock file cannot be created (a read-only or full disk).
    """
    if is_remote(store.url):
        yield
        return
    path = local_path(store.url) / RUN_LOCK
    try:  # unbuffered: nothing is left to flush (and fail) on close when the disk is full
        fh = open(path, "a+b", buffering=0)  # noqa: SIM115 (closed by the `with` below)
    except OSError as exc:
        raise store_write_error(exc, "the run lock", str(path)) from exc
    with fh:
        _acquire(fh, store, wait=wait)
        with contextlib.suppress(OSError):  # who holds it: a courtesy, may fail on a full disk
            fh.seek(0)
            fh.truncate()
            host = socket.gethostname()
            fh.write(f"{purpose} pid {os.getpid()} on {host} since {time.ctime()}".encode())
        key = str(path.resolve())
        _held_paths().add(key)
        try:
            yield
        finally:
            _held_paths().discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _acquire(fh: IO[bytes], store: CohortStore, *, wait: float) -> None:
    """Take the flock, waiting up to ``wait`` seconds while a short writer holds it."""
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().decode(errors="replace").strip()
        waited = time.monotonic() - start
        # An empty file: its holder took the lock a moment ago and is writing its name.
        short = holder.startswith(_SHORT) or (not holder and waited < 1.0)
        if wait > 0 and short and waited < wait:
            time.sleep(0.2)
            continue
        what = holder.split(" ", 1)[0] if holder else "run"
        raise StoreError(
            f"another {what} is using {redact_url(store.url)} ({holder or 'another process'}); "
            "wait for it to finish or stop it. Runs resume, so nothing is lost by waiting."
        )


@contextlib.contextmanager
def writer_lock(store: CohortStore, *, purpose: str, wait: float = 0.0) -> Iterator[None]:
    """`run_lock` for one writer of the store, or nothing when this thread holds it already.

    What `run` does inside its lock (ingest new scans, reference masks, the run itself) takes
    this: called alone, each locks the store; called by a holder, each passes through.
    """
    if not is_remote(store.url):
        key = str((local_path(store.url) / RUN_LOCK).resolve())
        if key in _held_paths():
            yield
            return
    with run_lock(store, purpose=purpose, wait=wait):
        yield
