"""The cohort store on S3 (a local moto server on 127.0.0.1): same API, same exact round trip."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore, Manifest, export, ingest
from tests.conftest import S3_SECRET as SECRET


@pytest.mark.timeout(60)
def test_s3_round_trip_and_listing(s3_options):
    store = CohortStore("s3://cohort/rt.zarr", storage_options=s3_options)
    affine = np.array([[0, 0, -3.3, 20.0], [-0.6, 0, 0, 40.25], [0, -0.6, 0, 300.0], [0, 0, 0, 1]])
    vol = Volume(np.arange(70 * 66 * 5, dtype=np.int16).reshape(70, 66, 5), affine)
    key = store.write_volume("sub-001", "image", vol, source="s3://u:pw@b/x.nii.gz")
    assert key.store == "s3://cohort/rt.zarr"
    again = CohortStore("s3://cohort/rt.zarr", mode="r", storage_options=s3_options)
    assert again.subjects() == ["sub-001"] and again.has_volume("sub-001", "image")
    back = again.read_volume("sub-001", "image")
    assert back.data.dtype == np.int16 and np.array_equal(back.affine, affine)
    np.testing.assert_array_equal(back.data, vol.data)
    assert again.read_attrs("sub-001", "image")["source"] == "s3://u:***@b/x.nii.gz"
    da = again.open_xarray("sub-001", "image")
    assert da.dims == ("z", "y", "x") and int(da.max()) == vol.data.max()
    assert SECRET not in repr(again) and SECRET not in str(key)
    store.write_volume("sub-001", "image", vol.with_data(vol.data[::-1].copy()))  # a retry
    np.testing.assert_array_equal(again.read_volume("sub-001", "image").data, vol.data[::-1])


@pytest.mark.timeout(60)
def test_s3_ingest_manifest_and_export(s3_options, bids, tmp_path):
    url = "s3://cohort/ingest.zarr"
    summary = ingest(bids, url, storage_options=s3_options, workers=2)
    assert summary.ingested == ["sub-001", "sub-002_ses-1"]
    df = Manifest(url + "/manifest.parquet", storage_options=s3_options).read()
    assert sorted(df["status"]) == ["ok", "ok"]
    assert ingest(bids, url, storage_options=s3_options).skipped == ["sub-001", "sub-002_ses-1"]
    written = export(url, tmp_path / "out", arrays=("image",), storage_options=s3_options)
    assert len(written) == 3 and written[-1].name == "dataset_description.json"
