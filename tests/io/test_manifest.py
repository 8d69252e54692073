"""The Parquet manifest: upsert by (subject, phase), typed columns, safe concurrent writers."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from spineps_dask.errors import StoreError
from spineps_dask.io import Manifest, make_row


def test_missing_manifest_reads_as_empty_with_all_columns(tmp_path):
    df = Manifest(tmp_path / "m.parquet").read()
    assert df.empty
    assert {"subject", "phase", "status", "sha256", "error", "updated"} <= set(df.columns)


def test_upsert_replaces_the_row_of_the_same_subject_and_phase(tmp_path):
    m = Manifest(tmp_path / "m.parquet")
    m.upsert([make_row("sub-1", "failed", error="bad"), make_row("sub-2", "ok", shape=[1, 2, 3])])
    m.upsert([make_row("sub-1", "ok", sha256="aa", seconds=1.5)])
    df = m.read()
    assert list(df["subject"]) == ["sub-1", "sub-2"]
    row = m.rows(phase="ingest")["sub-1"]
    assert row["status"] == "ok" and row["error"] is None and row["seconds"] == 1.5
    assert list(m.rows()["sub-2"]["shape"]) == [1, 2, 3]


def test_phases_are_separate_rows_and_extra_columns_survive(tmp_path):
    """The runner adds rows per phase with its own columns; ingest rows must stay intact."""
    m = Manifest(tmp_path / "m.parquet")
    m.upsert([make_row("sub-1", "ok")])
    m.upsert([make_row("sub-1", "ok", phase="semantic", timings={"predict": 2.0}, gpu="h100")])
    m.upsert([make_row("sub-2", "ok")])
    df = m.read()
    assert sorted(zip(df["subject"], df["phase"], strict=True)) == [
        ("sub-1", "ingest"),
        ("sub-1", "semantic"),
        ("sub-2", "ingest"),
    ]
    sem = m.rows(phase="semantic")["sub-1"]
    assert sem["gpu"] == "h100" and sem["timings"] == '{"predict": 2.0}'


def test_bad_status_and_keyless_rows_are_refused(tmp_path):
    with pytest.raises(StoreError, match="status 'done'"):
        make_row("sub-1", "done")
    with pytest.raises(StoreError, match="lacks"):
        Manifest(tmp_path / "m.parquet").upsert([{"subject": "sub-1"}])


def test_corrupt_manifest_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "m.parquet"
    path.write_text("not parquet")
    with pytest.raises(StoreError, match="not readable Parquet"):
        Manifest(path).upsert([make_row("sub-1", "ok")])
    assert path.read_text() == "not parquet"


def test_concurrent_upserts_from_threads_lose_no_row(tmp_path):
    m = Manifest(tmp_path / "m.parquet")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: m.upsert([make_row(f"sub-{i:03d}", "ok")]), range(40)))
    assert len(m.read()) == 40


_WRITER = """
import sys
from spineps_dask.io.manifest import Manifest, make_row
m = Manifest(sys.argv[1])
for i in range(15):
    m.upsert([make_row(f"sub-{sys.argv[2]}{i:02d}", "ok")])
"""


def test_concurrent_upserts_from_two_processes_lose_no_row(tmp_path):
    """The lock file serialises writers in different processes (two ingests, one store)."""
    path = str(tmp_path / "m.parquet")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, path, tag], cwd=".") for tag in "ab"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(Manifest(path).read()) == 30
