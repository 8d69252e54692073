"""Export: store volumes -> NIfTI (+ centroid JSON, snapshot) with the reference's file names."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from spineps_dask._version import __version__
from spineps_dask.io import CohortStore, export, ingest


def test_export_writes_derivatives_centroids_and_snapshot(tmp_path, bids):
    ingest(bids, tmp_path / "c.zarr")
    store = CohortStore(tmp_path / "c.zarr")
    image = store.read_volume("sub-002_ses-1", "image")
    seg = image.with_data((image.data > 500).astype(np.uint8) * 41)
    store.write_volume("sub-002_ses-1", "semantic", seg)
    inst = seg.with_data((seg.data > 0).astype(np.uint16) * 20)
    store.write_volume("sub-002_ses-1", "instance", inst, centroids={"20": [6.5, 9.5, 2.0]})
    store.write_blob("sub-002_ses-1", "snapshot.png", b"\x89PNG fake")
    written = export(tmp_path / "c.zarr", tmp_path / "out")
    folder = tmp_path / "out/sub-002/ses-1/anat"
    assert sorted(p.relative_to(folder).as_posix() for p in written if folder in p.parents) == [
        "sub-002_ses-1_mod-T2w_ctd.json",
        "sub-002_ses-1_mod-T2w_seg-spine_msk.nii.gz",
        "sub-002_ses-1_mod-T2w_seg-vert_msk.nii.gz",
        "sub-002_ses-1_mod-T2w_snp.png",
    ]
    sem = nib.load(str(folder / "sub-002_ses-1_mod-T2w_seg-spine_msk.nii.gz"))
    assert sem.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(sem.dataobj), seg.data)
    assert np.array_equal(sem.affine, image.affine)
    ctd = json.loads((folder / "sub-002_ses-1_mod-T2w_ctd.json").read_text())
    assert ctd[1] == {"label": 20, "X": 6.5, "Y": 9.5, "Z": 2.0}
    assert ctd[0]["direction"] == list(image.orientation)
    assert (folder / "sub-002_ses-1_mod-T2w_snp.png").read_bytes() == b"\x89PNG fake"


def test_export_skips_subjects_without_results(tmp_path, bids):
    ingest(bids, tmp_path / "c.zarr")
    assert export(tmp_path / "c.zarr", tmp_path / "out") == []
    assert not (tmp_path / "out").exists()


def test_export_is_a_bids_derivatives_dataset(tmp_path, bids):
    """Issue 21 item 11: the export folder has ``dataset_description.json`` (DatasetType
    derivative, GeneratedBy this package, its version and the models of the masks) and the
    cohort's ``participants.tsv``."""
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-001\t40\n")
    ingest(bids, tmp_path / "c.zarr")
    store = CohortStore(tmp_path / "c.zarr")
    image = store.read_volume("sub-001", "image")
    mask = image.with_data((image.data > 500).astype(np.uint8))
    store.write_volume("sub-001", "semantic", mask, models="semantic=demo@1,instance=demo@2")
    written = export(tmp_path / "c.zarr", tmp_path / "out", arrays=("semantic",))
    desc = json.loads((tmp_path / "out/dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"]
    (gen,) = desc["GeneratedBy"]
    assert gen["Name"] == "spineps-dask" and gen["Version"] == __version__
    assert "semantic=demo@1,instance=demo@2" in gen["Description"]
    assert (tmp_path / "out/participants.tsv").read_text().startswith("participant_id")
    assert tmp_path / "out/dataset_description.json" in written
