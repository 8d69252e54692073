"""One run per store at a time: an exclusive lock on a file in the store folder.

Two drivers on one store would both take the same unfinished subjects and write the same
arrays. Local stores use an ``flock`` on ``<store>/.run.lock``, released by the OS if the driver
dies; object stores cannot be locked this way, so there only one driver may run (README).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator

from spineps_dask.errors import StoreError
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, local_path
from spineps_dask.io.names import RUN_LOCK
from spineps_dask.io.store import CohortStore


@contextlib.contextmanager
def run_lock(store: CohortStore) -> Iterator[None]:
    """Hold the store's run lock inside the ``with`` block.

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
