"""BIDS ingest and export: bad scans fail alone, re-runs skip, round trip is exact."""

from __future__ import annotations

import gzip
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spineps_dask.geometry import Volume
from spineps_dask.io import (
    CohortStore,
    Manifest,
    Scan,
    ScanLimits,
    discover_scans,
    export,
    ingest,
    ingest_scan,
)


def _broken_cohort(root: Path, outside: Path, make_scan, make_data, bad_header) -> dict[str, str]:
    """Write one scan per failure mode; return {manifest subject: expected reason (regex)}."""
    good = make_data(3)
    path = make_scan(root, "trunc", good)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    text = root / "sub-text/anat/sub-text_T2w.nii.gz"
    text.parent.mkdir(parents=True)
    text.write_bytes(gzip.compress(b"this is a text file, not an image\n" * 10))
    make_scan(root, "flat", good[:, :, 0])
    make_scan(root, "fourd", np.stack([good, good], axis=-1))
    nan = good.astype(np.float32)
    nan[1, 2, 3] = np.nan
    make_scan(root, "nan", nan)
    zero = make_scan(root, "zero", good)
    img = nib.Nifti1Image(good, None)
    img.set_qform(None, code=0)
    img.set_sform(np.diag([0.7, 0.0, 3.0, 1.0]), code=1)  # a qform could not even hold this
    nib.save(img, str(zero))
    bad_header(make_scan(root, "negpix", good), pixdim=(0.6, -0.6, 3.3), sform_code=0)
    dots = root / "sub-.." / "anat"
    dots.mkdir(parents=True)
    (dots / "sub-.._T2w.nii.gz").write_bytes(b"")
    link = root / "sub-link/anat"
    link.mkdir(parents=True)
    (link / "sub-link_T2w.nii.gz").symlink_to(make_scan(outside, "link", good))
    make_scan(root, "dup", good)
    make_scan(root, "dup", good, name="sub-dup_T2w.nii")  # the same entities as .nii.gz
    make_scan(root, "where", good, name="sub-else_T2w.nii.gz")
    return {
        "sub-trunc": r"cannot read sub-trunc_T2w.nii.gz as NIfTI",
        "sub-text": r"cannot read sub-text_T2w.nii.gz as NIfTI",
        "sub-flat": r"\(2D\); a 3D scan is needed",
        "sub-fourd": r"\(4D\); a 3D scan is needed",
        "sub-nan": r"1 of \d+ voxels are NaN or Inf",
        "sub-zero": r"voxel spacing \[0.7, 0.0, 3.0\] mm is outside",
        "sub-negpix": r"pixdim\) \[0.6\d*, -0.6\d*, 3.\d+\] has zero or negative entries",
        "sub-../anat/sub-.._T2w.nii.gz": r"'sub-..' is not a BIDS entity",
        "sub-link": r"sub-link_T2w.nii.gz links outside the cohort folder",
        "sub-dup": r"2 files are the same scan sub-dup",
        "sub-else": r"file name says sub-else but it lies in sub-where",
    }


def test_each_bad_scan_is_a_failed_row_and_good_subjects_are_ingested(
    tmp_path, bids, make_scan, make_data, bad_header
):
    expected = _broken_cohort(bids, tmp_path / "outside", make_scan, make_data, bad_header)
    summary = ingest(bids, tmp_path / "c.zarr", workers=2)
    assert summary.ingested == ["sub-001", "sub-002_ses-1"]
    assert sorted(summary.failed) == sorted(expected)
    rows = Manifest(tmp_path / "c.zarr/manifest.parquet").rows(phase="ingest")
    assert len(rows) == len(expected) + 2
    for subject, reason in expected.items():
        assert rows[subject]["status"] == "failed"
        assert re.search(reason, rows[subject]["error"]), rows[subject]["error"]
    store = CohortStore(tmp_path / "c.zarr", mode="r")
    assert store.subjects() == ["sub-001", "sub-002_ses-1"]  # no group for any failed scan


def test_scans_refused_by_path_are_rows_under_their_subject_id(tmp_path, bids, make_scan):
    """A link leading out of the cohort or a broken link is a failed row under the subject id
    its name gives (``sub-link``), not under its relative path; only a name that gives no id
    keeps the path."""
    link = bids / "sub-link/anat"
    link.mkdir(parents=True)
    (link / "sub-link_T2w.nii.gz").symlink_to(make_scan(tmp_path / "outside", "link"))
    gone = bids / "sub-gone/anat"
    gone.mkdir(parents=True)
    (gone / "sub-gone_T2w.nii.gz").symlink_to(tmp_path / "nowhere.nii.gz")
    failed = ingest(bids, tmp_path / "c.zarr").failed
    assert sorted(failed) == ["sub-gone", "sub-link"]
    assert "sub-gone_T2w.nii.gz is a broken link" in failed["sub-gone"]


@pytest.mark.timeout(30)
def test_a_fifo_named_like_a_scan_is_refused_at_once(tmp_path, bids):
    """A FIFO (and any other non-regular file) named like a scan is refused from ``stat``
    alone, before its checksum or voxels are read (reading a FIFO blocks until something
    writes to it); the other subjects are ingested, and all of it returns in seconds."""
    fifo = bids / "sub-fifo/anat/sub-fifo_T2w.nii.gz"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    (bids / "sub-dir/anat/sub-dir_T2w.nii.gz").mkdir(parents=True)
    url = tmp_path / "c.zarr"
    ingest(bids, url)  # the good subjects: nothing left to do below but the refusals
    start = time.perf_counter()
    summary = ingest(bids, url)
    assert time.perf_counter() - start < 5.0  # a blocked read would never return
    assert summary.skipped == ["sub-001", "sub-002_ses-1"]
    assert "is a FIFO (named pipe), not a regular file" in summary.failed["sub-fifo"]
    assert "is a folder, not a regular file" in summary.failed["sub-dir"]
    scan = Scan("sub-fifo", fifo)  # a caller's own scan list is checked the same way
    row = ingest_scan(scan, CohortStore(url), previous=None)
    assert row["status"] == "failed" and "FIFO" in row["error"]


def test_discovery_finds_sessions_and_ignores_other_suffixes(bids, make_scan, make_data):
    make_scan(bids, "003", make_data(), name="sub-003_T1w.nii.gz")
    scans = discover_scans(bids)
    assert [s.subject for s in scans] == ["sub-001", "sub-002_ses-1"]
    assert all(s.error is None for s in scans)
    assert [s.subject for s in discover_scans(bids, suffix="T1w")] == ["sub-003"]


def test_reingest_skips_unchanged_adds_new_and_redoes_changed(tmp_path, bids, make_scan, make_data):
    url = tmp_path / "c.zarr"
    first = ingest(bids, url)
    assert first.ingested == ["sub-001", "sub-002_ses-1"]
    store = CohortStore(url)
    store.write_volume("sub-001", "semantic", Volume(np.zeros((24, 20, 6), np.uint8), np.eye(4)))
    make_scan(bids, "003", make_data(3))
    make_scan(bids, "001", make_data(99))  # changed scan: new checksum
    second = ingest(bids, url)
    assert second.skipped == ["sub-002_ses-1"]
    assert second.ingested == ["sub-001", "sub-003"]
    assert store.volumes("sub-001") == ["image"]  # the stale semantic result was dropped
    np.testing.assert_array_equal(store.read_volume("sub-001", "image").data, make_data(99))
    df = Manifest(url / "manifest.parquet").read()
    assert sorted(df["subject"]) == ["sub-001", "sub-002_ses-1", "sub-003"]  # no duplicates
    third = ingest(bids, url)
    assert third.skipped == ["sub-001", "sub-002_ses-1", "sub-003"] and not third.ingested


def test_a_fixed_scan_is_retried_after_a_failure(tmp_path, bids, make_scan, make_data):
    nan = make_data(5).astype(np.float32)
    nan[0, 0, 0] = np.nan
    make_scan(bids, "004", nan)
    assert "sub-004" in ingest(bids, tmp_path / "c.zarr").failed
    make_scan(bids, "004", make_data(5))
    assert ingest(bids, tmp_path / "c.zarr").ingested == ["sub-004"]


def test_concurrent_ingests_of_different_subjects_share_one_store(tmp_path, make_scan, make_data):
    """Two ingests at once (threads) into one store: every subject and manifest row lands."""
    dirs = [tmp_path / "a", tmp_path / "b"]
    for k, root in enumerate(dirs):
        for i in range(4):
            make_scan(root, f"{k}{i:02d}", make_data(10 * k + i))
    url = tmp_path / "c.zarr"
    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda d: ingest(d, url, workers=2), dirs))
    assert [len(s.ingested) for s in summaries] == [4, 4]
    store = CohortStore(url, mode="r")
    assert len(store.subjects()) == 8
    assert all(store.has_volume(s, "image") for s in store.subjects())
    assert len(Manifest(url / "manifest.parquet").read()) == 8


def test_a_scan_too_large_is_refused_from_its_header(
    tmp_path, bids, make_scan, make_data, bad_header
):
    """A header claiming 4096 x 4096 x 400 int16 voxels (12.5 GiB) is refused by its size, not
    read: its file holds only a few kB, so reading it would fail as truncated instead. A
    smaller limit (``ScanLimits.max_bytes``) refuses an ordinary scan, naming the limit."""
    bad_header(make_scan(bids, "huge", make_data(4)), shape=(4096, 4096, 400))
    summary = ingest(bids, tmp_path / "c.zarr")
    assert summary.ingested == ["sub-001", "sub-002_ses-1"]
    row = Manifest(tmp_path / "c.zarr/manifest.parquet").rows(phase="ingest")["sub-huge"]
    assert row["status"] == "failed" and row["step"] == "ingest"
    assert re.search(
        r"4096x4096x400 voxels of int16 take 12.50 GiB, over the 1.00 GiB limit .*refused "
        r"before reading.*--max-scan-gb 13",
        row["error"],
    ), row["error"]
    make_scan(bids, "003", make_data(3))  # 24 x 20 x 6 int16 = 5.6 KiB
    small = ingest(bids, tmp_path / "c.zarr", limits=ScanLimits(max_bytes=4096))
    assert small.ingested == [] and "over the 4.0 KiB limit" in small.failed["sub-003"]
    assert ingest(bids, tmp_path / "c.zarr").ingested == ["sub-003"]  # default limit: fits


def _assert_same_nifti(a: Path, b: Path) -> None:
    ia, ib = nib.load(str(a)), nib.load(str(b))
    da, db = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
    assert da.dtype == db.dtype
    np.testing.assert_array_equal(da, db)
    assert np.array_equal(ia.affine, ib.affine)


def test_nifti_zarr_nifti_round_trip_is_exact(tmp_path, bids):
    ingest(bids, tmp_path / "c.zarr")
    written = [
        p
        for p in export(tmp_path / "c.zarr", tmp_path / "out", arrays=("image",))
        if "sub-" in p.name
    ]
    rel = sorted(str(p.relative_to(tmp_path / "out")) for p in written)
    assert rel == ["sub-001/anat/sub-001_T2w.nii.gz", "sub-002/ses-1/anat/sub-002_ses-1_T2w.nii.gz"]
    for path in written:
        _assert_same_nifti(bids / path.relative_to(tmp_path / "out"), path)


def _tptbox_sample() -> Path:
    try:
        import TPTBox
    except ImportError:
        pytest.skip("tptbox is not installed (pip install '.[test]'): no real sample MRI")
    path = Path(TPTBox.__file__).parent / "tests/sample_mri/sub-mri_label-6_T2w.nii.gz"
    if not path.is_file():
        pytest.skip(f"the tptbox wheel ships no sample MRI at {path}")
    return path


def test_real_t2w_sample_round_trips_exactly(tmp_path):
    """tptbox's shipped T2w sample: NIfTI -> store -> NIfTI keeps every voxel and the affine."""
    sample = _tptbox_sample()
    root = tmp_path / "bids"
    (root / "sub-mri/anat").mkdir(parents=True)
    os.symlink(sample, root / "sub-mri/anat/sub-mri_label-6_T2w.nii.gz")  # outside: refused
    # refused under the key its name gives (issue 18), every entity in it (issue 21)
    assert "links outside" in ingest(root, tmp_path / "c.zarr").failed["sub-mri_label-6"]
    src = root / "sub-mri/anat/sub-mri_label-6_T2w.nii.gz"
    src.unlink()
    src.write_bytes(sample.read_bytes())
    assert ingest(root, tmp_path / "c.zarr").ingested == ["sub-mri_label-6"]  # every entity
    (out,) = (
        p
        for p in export(tmp_path / "c.zarr", tmp_path / "out", arrays=("image",))
        if "sub-" in p.name
    )
    assert out.name == "sub-mri_label-6_T2w.nii.gz"
    _assert_same_nifti(sample, out)
    da = CohortStore(tmp_path / "c.zarr", mode="r").open_xarray("sub-mri_label-6", "image")
    assert da.shape == nib.load(str(sample)).shape[::-1]


def test_an_interrupted_ingest_keeps_the_rows_of_finished_scans(tmp_path, bids):
    def interrupt(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(bids, tmp_path / "c.zarr", workers=1, progress=interrupt)
    rows = Manifest(tmp_path / "c.zarr/manifest.parquet").rows(phase="ingest")
    assert len(rows) == 1 and next(iter(rows.values()))["status"] == "ok"
    again = ingest(bids, tmp_path / "c.zarr")
    assert len(again.skipped) == 1 and len(again.ingested) == 1
