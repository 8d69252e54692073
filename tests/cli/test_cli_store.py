"""``spineps-dask ingest`` / ``export`` from the command line."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.io.cohort import ingest
from spineps_dask.io.references import ingest_references
from spineps_dask.io.store import CohortStore
from tests.io.conftest import scan_data, write_scan
from tests.io.test_references import _write_refs


def _scan(root, sub, data):
    folder = root / f"sub-{sub}" / "anat"
    folder.mkdir(parents=True)
    nib.save(
        nib.Nifti1Image(data, np.diag([0.6, 0.6, 3.3, 1])), str(folder / f"sub-{sub}_T2w.nii.gz")
    )


def test_ingest_prints_a_summary_and_export_writes_nifti(tmp_path):
    good = np.arange(8 * 8 * 4, dtype=np.int16).reshape(8, 8, 4)
    bad = good.astype(np.float32)
    bad[0, 0, 0] = np.inf
    _scan(tmp_path / "bids", "001", good)
    _scan(tmp_path / "bids", "002", bad)
    runner = CliRunner()
    store = str(tmp_path / "c.zarr")
    result = runner.invoke(app, ["ingest", str(tmp_path / "bids"), store])
    assert result.exit_code == 1, result.output  # one scan failed
    assert "ingested" in result.output and "sub-002" in result.output
    assert "NaN or Inf" in result.output
    again = runner.invoke(app, ["ingest", str(tmp_path / "bids"), store, "-j", "1"])
    assert "skipped" in again.output
    out = runner.invoke(app, ["export", store, str(tmp_path / "out"), "-a", "image"])
    assert out.exit_code == 0, out.output
    assert "wrote 2 files" in out.output  # the image and dataset_description.json
    assert (tmp_path / "out/sub-001/anat/sub-001_T2w.nii.gz").is_file()


def test_ingest_of_a_missing_folder_exits_2_with_the_reason(tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope"), str(tmp_path / "c.zarr")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "c.zarr").exists()


@pytest.fixture(scope="module")
def scheduler():
    """An in-process cluster for the command to join (``--cluster tcp://...``)."""
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    with cluster:
        yield cluster.scheduler_address


def test_ingest_on_a_cluster_writes_the_store_the_driver_would(tmp_path, scheduler):
    """Issue 19: ``ingest`` (scans and references) runs on the cluster it is given, the
    command only lists and plans. The store it writes is the driver's own ingest's: the same
    manifest rows, scans and references; the bad scans (NaN, 2D, not a NIfTI file) and the
    bad reference are failed rows and listed (exit code 1), the rest is ingested."""
    bids, refs = tmp_path / "bids", tmp_path / "refs"
    write_scan(bids, "001", scan_data(1))
    write_scan(bids, "002", scan_data(2, dtype=np.float32), ses="1")
    nan = scan_data(3, dtype=np.float32)
    nan[0, 0, 0] = np.nan
    write_scan(bids, "nan", nan)
    write_scan(bids, "flat", np.ones((24, 20), np.int16))
    (bids / "sub-junk/anat").mkdir(parents=True)
    (bids / "sub-junk/anat/sub-junk_T2w.nii.gz").write_bytes(b"not a NIfTI file")
    sem = np.zeros((24, 20, 6), np.uint8)
    sem[4:10, 5:15, 1:4] = 49
    inst = np.where(sem > 0, 20, 0).astype(np.uint8)
    _write_refs(refs, "001", sem, inst)
    _write_refs(refs, "flat", sem, inst)  # its scan failed: not looked at
    there = tmp_path / "there.zarr"
    args = ["ingest", str(bids), str(there), "--cluster", scheduler, "--references", str(refs)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "sub-nan" in text and "sub-flat" in text and "sub-junk" in text
    assert "references: 1 subjects, 1 without, 0 refused" in text

    here = tmp_path / "here.zarr"
    ingest(bids, here)
    ingest_references(refs, CohortStore(here))
    columns = ["subject", "status", "sha256", "orientation", "dtype", "error", "step", "source"]
    a = CohortStore(here).manifest.read()[columns]
    b = CohortStore(there).manifest.read()[columns]
    assert a.equals(b)
    failed = b.loc[b.status == "failed", "subject"].tolist()
    assert failed == ["sub-flat", "sub-junk", "sub-nan"]
    x, y = CohortStore(here, mode="r"), CohortStore(there, mode="r")
    assert y.subjects() == x.subjects() == ["sub-001", "sub-002_ses-1"]
    assert y.volumes("sub-001") == ["image", "ref_instance", "ref_semantic"]
    for subject, name in [
        ("sub-001", "image"),
        ("sub-002_ses-1", "image"),
        ("sub-001", "ref_instance"),
    ]:
        assert x.read_attrs(subject, name) == y.read_attrs(subject, name)
        np.testing.assert_array_equal(
            x.read_volume(subject, name).data, y.read_volume(subject, name).data
        )
    again = CliRunner().invoke(app, ["ingest", str(bids), str(there), "-c", scheduler, "-j", "1"])
    assert again.exit_code == 1 and "skipped" in again.output


@pytest.mark.timeout(60)
def test_ingest_beside_a_run_is_refused_before_it_starts_a_cluster(tmp_path):
    """The command takes the store's lock before it starts or joins a cluster: beside a run
    it stops at once naming the run (exit code 2), and joins nothing (no scheduler answers at
    the address given, which would be another error)."""
    from tests.io.test_lock import Holder

    write_scan(tmp_path / "bids", "001", scan_data(1))
    url = tmp_path / "c.zarr"
    CohortStore(url)
    holder = Holder(url, "run")
    try:
        args = ["ingest", str(tmp_path / "bids"), str(url), "-c", "tcp://127.0.0.1:9"]
        result = CliRunner().invoke(app, args)
    finally:
        holder.stop()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "another run is using" in text and "no scheduler" not in text
    assert CohortStore(url).subjects() == []
