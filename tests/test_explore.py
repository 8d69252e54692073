"""`open_cohort` in a notebook: volumes on anatomical axes whatever the scan's storage order
(issue 21 item 10), status rows for every scan including ingest failures, participants joined
to the tables (item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spineps_dask.explore import ANATOMICAL_DIMS, open_cohort
from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore, ingest
from spineps_dask.io.tables import table_bytes
from tests.io.conftest import write_scan

ORIENTATIONS = ["RAS", "PIR", "LPS", "ASL", "IRP", "SLA"]


def _scan() -> Volume:
    """A 6 x 7 x 8 volume whose every voxel differs, 1 x 2 x 3 mm, stored RAS."""
    data = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = (-3.0, 10.0, 100.0)
    return Volume(data, affine)


def test_dataset_speaks_anatomical_axes_whatever_the_storage_order(tmp_path):
    """The same scan stored in six orientations gives the same (superior, anterior, right)
    array and coordinates; a sagittal slice is ``isel(right=k)`` for all of them."""
    store = CohortStore(tmp_path / "c.zarr")
    for i, codes in enumerate(ORIENTATIONS):
        store.write_volume(f"sub-{i}", "image", _scan().reorient(tuple(codes)))
    cohort = open_cohort(tmp_path / "c.zarr")
    ref = cohort.dataset("sub-0")["image"]
    assert ref.dims == ANATOMICAL_DIMS and ref.shape == (8, 7, 6)
    assert np.all(np.diff(ref["superior"].values) > 0) and np.all(np.diff(ref["right"]) > 0)
    for i, codes in enumerate(ORIENTATIONS):
        got = cohort.dataset(f"sub-{i}")["image"]
        np.testing.assert_array_equal(got.values, ref.values, err_msg=codes)
        for dim in ANATOMICAL_DIMS:
            np.testing.assert_allclose(got[dim].values, ref[dim].values, err_msg=codes)
        sagittal = got.isel(right=2)
        assert sagittal.dims == ("superior", "anterior")
        np.testing.assert_array_equal(sagittal.values, _scan().data[2].T)
    stored = cohort.volume("sub-1", "image", anatomical=False)
    assert stored.dims == ("z", "y", "x")


def test_status_has_every_scan_with_ingest_failures_and_participants(tmp_path):
    """A scan refused at ingest is a failed row with its phase and error; person and visit
    columns are there, and participants.tsv is joined."""
    bids = tmp_path / "bids"
    write_scan(bids, "001", ses="1")
    broken = write_scan(bids, "002")
    broken.write_bytes(b"not a NIfTI")
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-001\t61\nsub-002\tn/a\n")
    ingest(bids, tmp_path / "c.zarr")
    status = open_cohort(tmp_path / "c.zarr").status().set_index("scan")
    assert list(status.index) == ["sub-001_ses-1", "sub-002"]
    bad = status.loc["sub-002"]
    assert (bad.state, bad.phase, bad.ingest) == ("failed", "ingest", "failed")
    assert "cannot read" in bad.error
    ok = status.loc["sub-001_ses-1"]
    assert (ok.subject, ok.session, ok.state, ok.age) == ("sub-001", "ses-1", "not run", 61)


def test_tables_carry_scan_person_and_visit_also_from_older_stores(tmp_path):
    """A table stored before tables had ``scan`` and ``session`` gets them when read."""
    bids = tmp_path / "bids"
    write_scan(bids, "001", ses="2")
    ingest(bids, tmp_path / "c.zarr")
    store = CohortStore(tmp_path / "c.zarr")
    old = pd.DataFrame({"subject": ["sub-001_ses-2"], "level": ["L1"], "value": [1.0]})
    store.write_blob("sub-001_ses-2", "biomarkers.parquet", table_bytes(old))
    table = open_cohort(tmp_path / "c.zarr").table("biomarkers")
    row = table.iloc[0]
    assert (row.scan, row.subject, row.session) == ("sub-001_ses-2", "sub-001", "ses-2")
