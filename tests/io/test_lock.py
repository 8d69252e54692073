"""The store lock: one writer per store at a time, run and ingest alike."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spineps_dask.batch import run_batch
from spineps_dask.errors import StoreError
from spineps_dask.io import CohortStore, Manifest, ingest
from spineps_dask.io.lock import run_lock, writer_lock
from spineps_dask.io.references import ingest_references

HOLD = """
import sys, time
from spineps_dask.io.lock import run_lock
from spineps_dask.io.store import CohortStore
with run_lock(CohortStore(sys.argv[1]), purpose=sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


class Holder:
    """Another process holding the store's lock as ``purpose`` for ``seconds``."""

    def __init__(self, url: Path, purpose: str, seconds: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(url), purpose, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def test_second_run_on_the_same_store_refuses(tmp_path):
    """Two runs on one store: the second stops at once with a message, the first is untouched."""
    store = CohortStore(str(tmp_path / "store.zarr"))
    with run_lock(store), pytest.raises(StoreError, match="another run is using"), run_lock(store):
        pass
    with run_lock(store):  # released: the next run may go
        pass


@pytest.mark.timeout(60)
def test_an_ingest_beside_a_run_is_refused_before_it_rewrites_a_scan(tmp_path, bids, make_scan):
    """While another process runs on the store, an ingest of a changed scan (plain, or a second
    driver's ``run -i``) is refused at once, naming the holder: the stored scan, its results
    and the manifest stay exactly as they were, so the running driver's masks match their scan."""
    url = tmp_path / "c.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    before = store.read_volume("sub-001", "image").data.copy()
    rows = Manifest(url / "manifest.parquet").read()
    make_scan(bids, "001", np.ones((24, 20, 8), np.int16) * np.arange(8, dtype=np.int16))
    holder = Holder(url, "run")
    try:
        start = time.perf_counter()
        with pytest.raises(StoreError, match=r"another run is using .*\(run pid \d+ on "):
            ingest(bids, url)
        with pytest.raises(StoreError, match="another run is using"):
            # A stand-in client (issue 21 checks a cluster name before the store): were the
            # lock not refused, the run would fail on it, never start a cluster.
            run_batch(url, bids=bids, client=object())
        with pytest.raises(StoreError, match="another run is using"):
            ingest_references(bids, store)
        assert time.perf_counter() - start < 5.0
    finally:
        holder.stop()
    np.testing.assert_array_equal(store.read_volume("sub-001", "image").data, before)
    assert Manifest(url / "manifest.parquet").read().equals(rows)
    assert ingest(bids, url).ingested == ["sub-001"]  # the run is over: now it may


@pytest.mark.timeout(60)
def test_an_ingest_waits_for_another_ingest(tmp_path, bids):
    """Ingests are short, and two may fill one store: the second waits for the first's lock
    instead of failing."""
    url = tmp_path / "c.zarr"
    holder = Holder(url, "ingest", seconds=1.5)
    try:
        start = time.perf_counter()
        assert ingest(bids, url).ingested == ["sub-001", "sub-002_ses-1"]
        assert time.perf_counter() - start > 1.0
    finally:
        holder.stop()


def test_writers_inside_a_held_lock_pass_through_and_others_wait_their_turn(tmp_path, bids):
    """The thread holding the lock (``run -i``: the run's own ingest) ingests inside it;
    another thread's ingest waits until it is released."""
    url = tmp_path / "c.zarr"
    store = CohortStore(url)
    done: list[str] = []
    with writer_lock(store, purpose="ingest"):
        assert ingest(bids, store).ingested == ["sub-001", "sub-002_ses-1"]
        other = threading.Thread(target=lambda: done.extend(ingest(bids, url).skipped))
        other.start()
        time.sleep(0.5)
        assert other.is_alive() and done == []
    other.join(timeout=30)
    assert done == ["sub-001", "sub-002_ses-1"]
