"""The Parquet manifest: upsert by (subject, phase), typed columns, safe concurrent writers,
and (issue 19) writes that cost what they write: parts appended, merged, the newest row wins."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spineps_dask.errors import StoreError
from spineps_dask.io import Manifest, make_row
from spineps_dask.io.manifest import SCHEMA


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


# -- parts (issue 19): writes cost what they write, the newest row of a key wins -------------


def _files(folder):
    """Every file of a manifest (base and parts) with its size, temporary files excluded."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*.parquet")}


def _big(tmp_path, n: int) -> Manifest:
    """A manifest of ``n`` subjects x 2 phases, compacted into its base file."""
    m = Manifest(tmp_path / f"n{n}" / "manifest.parquet")
    rows = [make_row(f"sub-{i:06d}", "ok", sha256="ab" * 32) for i in range(n)]
    m.upsert(rows + [make_row(f"sub-{i:06d}", "ok", phase="segment") for i in range(n)])
    m.compact()
    return m


def test_a_flush_appends_one_part_and_leaves_the_base_untouched(tmp_path):
    """The base of 2 000 rows is not rewritten by a flush of 20 rows: one part with exactly
    those rows appears beside it."""
    m = _big(tmp_path, 1000)
    folder = tmp_path / "n1000"
    base = (folder / "manifest.parquet").read_bytes()
    m.upsert([make_row(f"sub-{i:06d}", "failed", phase="segment", error="x") for i in range(20)])
    assert (folder / "manifest.parquet").read_bytes() == base
    (part,) = (folder / "manifest").glob("part-*.parquet")
    assert part.name.endswith("-r20.parquet") and len(pd.read_parquet(part)) == 20
    assert len(m.read()) == 2000


def test_bytes_written_per_flush_do_not_grow_with_the_history(tmp_path):
    """One flush of 50 rows writes the same bytes into a manifest of 2 000 rows as into one of
    20 000: the cost is the rows written, not the rows kept."""
    written = []
    for n in (1000, 10000):
        m = _big(tmp_path, n)
        before = _files(tmp_path / f"n{n}")
        m.upsert([make_row(f"sub-{i:06d}", "ok", phase="semantic", seconds=1.0) for i in range(50)])
        after = _files(tmp_path / f"n{n}")
        written.append(sum(size for name, size in after.items() if before.get(name) != size))
    assert abs(written[0] - written[1]) < 64 and written[1] < 8_000  # timestamps differ


def test_the_newest_row_of_a_key_wins_across_base_and_parts(tmp_path):
    m = Manifest(tmp_path / "manifest.parquet")
    m.upsert([make_row("sub-1", "ok"), make_row("sub-2", "ok")])
    m.compact()
    m.upsert([make_row("sub-1", "failed", error="first")])
    m.upsert([make_row("sub-1", "failed", error="second"), make_row("sub-3", "ok")])
    rows = m.rows(phase="ingest")
    assert rows["sub-1"]["error"] == "second" and rows["sub-2"]["status"] == "ok"
    assert list(m.read()["subject"]) == ["sub-1", "sub-2", "sub-3"]  # one row per key, sorted


def _seconds(m: Manifest) -> dict[tuple[str, str], float]:
    df = m.read()
    return {(s, p): v for s, p, v in df[["subject", "phase", "seconds"]].itertuples(index=False)}


@pytest.mark.parametrize("seed", [0, 1])
def test_merges_and_compaction_keep_every_latest_row(tmp_path, monkeypatch, seed):
    """Many small flushes with merges forced early (fan-out 2, tiny tiers): after every flush
    the manifest reads as a dict that took every row in order, and so after `compact`."""
    from spineps_dask.io import _manifest_parts

    monkeypatch.setattr(_manifest_parts, "FANOUT", 2)
    monkeypatch.setattr(_manifest_parts, "TIER_ROWS", 2)
    rng = np.random.default_rng(seed)
    m = Manifest(tmp_path / "manifest.parquet")
    model: dict[tuple[str, str], float] = {}
    for flush in range(40):
        rows = []
        for _ in range(int(rng.integers(1, 12))):
            key = (f"sub-{rng.integers(30):03d}", str(rng.choice(["ingest", "segment"])))
            rows.append(make_row(key[0], "ok", phase=key[1], seconds=float(flush)))
            model[key] = float(flush)
        m.upsert(rows)
        assert _seconds(m) == model, flush
    assert len(list((tmp_path / "manifest").glob("part-*"))) < 12  # merged as it went
    assert m.compact() == len(model)
    assert not list((tmp_path / "manifest").glob("part-*"))
    assert _seconds(m) == model


def test_a_single_file_manifest_of_an_older_version_is_read_and_extended(tmp_path):
    """Stores written before parts existed hold one ``manifest.parquet``: it reads as before,
    new rows go into parts beside it, and a row of it is replaced by a newer one."""
    old = pa.Table.from_pylist(
        [
            {**make_row("sub-1", "ok", shape=[2, 3, 4]), "config": "c1"},
            {**make_row("sub-2", "failed", error="bad scan"), "config": None},
        ],
        schema=SCHEMA.append(pa.field("config", pa.string())),
    )
    pq.write_table(old, tmp_path / "manifest.parquet")
    m = Manifest(tmp_path / "manifest.parquet")
    assert m.read()["status"].tolist() == ["ok", "failed"]
    m.upsert([make_row("sub-2", "ok"), make_row("sub-3", "ok", phase="segment", run_id="r")])
    df = m.read()
    assert df["subject"].tolist() == ["sub-1", "sub-2", "sub-3"]
    assert df["status"].tolist() == ["ok", "ok", "ok"] and df["error"].isna().all()
    assert list(df["shape"][0]) == [2, 3, 4] and df["config"][0] == "c1"
    assert list(df.columns[: len(SCHEMA)]) == SCHEMA.names
    assert list(df.columns[len(SCHEMA) :]) == ["config", "run_id"]


def test_a_part_merged_away_during_a_read_makes_the_reader_read_again(tmp_path, monkeypatch):
    """A reader lists the parts, then another writer merges them and deletes the originals:
    the reader sees a part missing and reads again, never a manifest without those rows."""
    from spineps_dask.io import _manifest_parts

    m = Manifest(tmp_path / "manifest.parquet")
    m.upsert([make_row("sub-1", "ok")])
    m.upsert([make_row("sub-2", "ok")])
    real = _manifest_parts.Files.read
    calls = {"n": 0}

    def read(self, path):
        calls["n"] += 1
        if calls["n"] == 1 and "part-" in path:
            Manifest(tmp_path / "manifest.parquet").compact()  # "another writer"
            raise FileNotFoundError(path)
        return real(self, path)

    monkeypatch.setattr(_manifest_parts.Files, "read", read)
    assert m.read()["subject"].tolist() == ["sub-1", "sub-2"]


_MERGING_WRITER = """
import sys
from spineps_dask.io import _manifest_parts
from spineps_dask.io.manifest import Manifest, make_row
_manifest_parts.FANOUT, _manifest_parts.TIER_ROWS = 2, 1
m = Manifest(sys.argv[1])
for i in range(30):
    m.upsert([make_row(f"sub-{sys.argv[2]}{i:02d}", "ok"), make_row("sub-shared", "ok",
              source=f"{sys.argv[2]}{i:02d}")])
"""


def test_concurrent_flushes_that_merge_lose_no_row(tmp_path):
    """Two processes flushing and merging parts at once under the lock: every row of both is
    there, and the shared key holds the last row one of them wrote."""
    path = str(tmp_path / "manifest.parquet")
    procs = [
        subprocess.Popen([sys.executable, "-c", _MERGING_WRITER, path, tag], cwd=".")
        for tag in "ab"
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    rows = Manifest(path).rows()
    assert len(rows) == 61
    assert rows["sub-shared"]["source"] in ("a29", "b29")


@pytest.mark.timeout(120)
def test_parts_on_an_object_store(s3_options):
    """The same manifest on S3 (moto): parts appended with one put each, merged, read."""
    url = "s3://cohort/parts.zarr/manifest.parquet"
    m = Manifest(url, storage_options=s3_options)
    for i in range(12):
        m.upsert([make_row(f"sub-{i:03d}", "ok"), make_row("sub-000", "ok", source=str(i))])
    again = Manifest(url, storage_options=s3_options)
    assert len(again.read()) == 12 and again.rows()["sub-000"]["source"] == "11"
    assert again.compact() == 12
    assert len(Manifest(url, storage_options=s3_options).read()) == 12


def test_a_merge_that_fails_keeps_the_rows_written_and_reports_no_error(tmp_path, monkeypatch):
    """The part is the write; merging is upkeep: a disk that fills up between the two leaves
    the rows readable in their part, and the next flush merges."""
    from spineps_dask.io import _manifest_parts

    m = Manifest(tmp_path / "manifest.parquet")
    m.upsert([make_row("sub-1", "ok")])

    def full(self, paths):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_manifest_parts.Files, "delete", full)
    m.upsert([make_row("sub-2", "ok")])  # its merge into the base fails: no error
    monkeypatch.undo()
    assert m.read()["subject"].tolist() == ["sub-1", "sub-2"]
    m.upsert([make_row("sub-3", "ok")])
    assert m.read()["subject"].tolist() == ["sub-1", "sub-2", "sub-3"]
