"""Checksums written with every complete volume, checked when it is read, skipped or verified:
a deleted, truncated or flipped chunk is named, never read as if it were the data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.errors import DamagedVolumeError
from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore, Manifest, export, ingest
from spineps_dask.io.integrity import verify_store
from tests.io.damage import HOW, damage_chunk


def _mask(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    data = np.zeros((150, 140, 12), np.uint8)  # 3 x 3 chunks of 64 in-plane, one slab
    data[10:140, 20:130, 2:10] = rng.integers(1, 50, (130, 110, 8))
    return Volume(data, np.diag([0.6, 0.6, 3.3, 1.0]))


@pytest.mark.parametrize("how", HOW)
def test_a_damaged_chunk_is_named_by_every_reader(tmp_path, how):
    """Whatever happened to the chunk, reading the volume raises DamagedVolumeError naming
    the volume, the subject and the chunk; the quick check (chunk sizes, no voxel read) finds
    a truncated or deleted chunk, the full check (every voxel) a flipped bit too. A deleted
    chunk is not read as zeros."""
    store = CohortStore(tmp_path / "c.zarr")
    store.write_volume("sub-001", "semantic", _mask())
    assert store.verify_volume("sub-001", "semantic", full=True) is True
    key = damage_chunk(tmp_path / "c.zarr", "sub-001", "semantic", how)
    named = rf"'semantic' of sub-001 in .*c\.zarr is damaged: chunk {key} "
    with pytest.raises(DamagedVolumeError, match=named) as err:
        store.read_volume("sub-001", "semantic")
    assert err.value.volume == "semantic"
    with pytest.raises(DamagedVolumeError, match=named):
        store.verify_volume("sub-001", "semantic", full=True)
    if how == "flipped":  # same size: only the voxels tell
        assert store.verify_volume("sub-001", "semantic") is True
    else:
        with pytest.raises(DamagedVolumeError, match=named):
            store.verify_volume("sub-001", "semantic")
    if how == "deleted":  # unchecked, Zarr reads the chunk as zeros: what checksums are for
        unchecked = store.read_volume("sub-001", "semantic", verify=False)
        assert 0 < unchecked.data.astype(int).sum() < _mask().data.astype(int).sum()


def test_verify_marks_damaged_subjects_failed_and_ingest_redoes_a_damaged_scan(tmp_path, bids):
    """`verify_store` checks every kept volume; damaged subjects get a failed ``segment`` row
    (step ``verify``) that the next run redoes, a damaged scan also a failed ``ingest`` row;
    ``ingest`` itself re-reads a scan whose chunks are gone, instead of skipping it."""
    url = tmp_path / "c.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    store.write_volume("sub-001", "semantic", _mask())
    damage_chunk(url, "sub-001", "semantic", "flipped")
    damage_chunk(url, "sub-002_ses-1", "image", "flipped")
    report = verify_store(store)
    assert report.checked == 3 and sorted(report.damaged) == ["sub-001", "sub-002_ses-1"]
    rows = Manifest(url / "manifest.parquet")
    segment, ingested = rows.rows(phase="segment"), rows.rows(phase="ingest")
    assert segment["sub-001"]["status"] == "failed" and segment["sub-001"]["step"] == "verify"
    assert "'semantic' of sub-001" in segment["sub-001"]["error"]
    assert ingested["sub-002_ses-1"]["status"] == "failed"
    assert ingested["sub-001"]["status"] == "ok"
    assert ingest(bids, url).ingested == ["sub-002_ses-1"]  # failed row: read again
    damage_chunk(url, "sub-001", "image", "deleted")
    again = ingest(bids, url)  # the quick check on skipping finds the deleted chunk
    assert again.ingested == ["sub-001"] and again.skipped == ["sub-002_ses-1"]
    assert verify_store(store).damaged == {}


def test_export_writes_the_others_and_names_the_damaged_subject(tmp_path, bids):
    """A damaged mask stops only its own subject: the others are exported, the damaged one
    has no file at all, is marked failed in the manifest, and the CLI says so in one line
    (exit code 1: done in part, issue 21's exit codes), without a traceback."""
    url = tmp_path / "c.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    for subject in store.subjects():
        store.write_volume(subject, "semantic", _mask())
    damage_chunk(url, "sub-001", "semantic", "truncated")
    with pytest.raises(DamagedVolumeError, match=r"1 subject\(s\) .* damaged .*\(sub-001;"):
        export(url, tmp_path / "out", arrays=("semantic",))
    assert [p.name for p in (tmp_path / "out").rglob("*.nii.gz")] == [
        "sub-002_ses-1_mod-T2w_seg-spine_msk.nii.gz"
    ]
    assert Manifest(url / "manifest.parquet").rows(phase="segment")["sub-001"]["step"] == "verify"
    result = CliRunner().invoke(app, ["export", str(url), str(tmp_path / "cli"), "-a", "semantic"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    assert re.search(r"error:.*damaged", " ".join(result.output.split()))


def test_verify_command_lists_damage_in_one_line_each(tmp_path, bids):
    """``spineps-dask verify`` prints a summary and one line per damaged volume, exit 1; a
    sound store exits 0."""
    url = tmp_path / "c.zarr"
    ingest(bids, url)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(url)])
    assert ok.exit_code == 0 and "2 volumes checked, 0 subjects damaged" in ok.output
    damage_chunk(url, "sub-001", "image", "deleted")
    bad = runner.invoke(app, ["verify", str(url), "--quick"])
    assert bad.exit_code == 1, bad.output
    assert "damaged sub-001: 'image' of sub-001" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output


def test_damaged_references_are_reported_but_fail_nothing(tmp_path, bids):
    """A damaged reference mask is listed by `verify_store`, but the subject's masks are sound:
    no manifest row is failed (it is only not scored until its references are ingested
    again)."""
    url = tmp_path / "c.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    store.write_volume("sub-001", "ref_semantic", _mask(), label=True)
    damage_chunk(url, "sub-001", "ref_semantic", "deleted")
    report = verify_store(store)
    assert list(report.damaged) == ["sub-001"] and list(report.damaged["sub-001"]) == [
        "ref_semantic"
    ]
    assert Manifest(url / "manifest.parquet").rows(phase="segment") == {}


def test_verify_on_a_store_that_does_not_exist_creates_nothing(tmp_path):
    """Issue 21 item 2 for ``verify``: a mistyped store is one line and exit code 2; no empty
    store is made to report "0 volumes checked"."""
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "nostore.zarr")])
    assert result.exit_code == 2, result.output
    assert "no cohort store" in " ".join(result.output.split())
    assert not (tmp_path / "nostore.zarr").exists()
