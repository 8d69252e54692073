"""The Zarr cohort store: exact round trip, metadata for xarray/napari, the ``complete`` flag."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import xarray as xr
import zarr

from spineps_dask.errors import InputError, StoreError
from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore
from spineps_dask.io._urls import redact_url

# Affines with different axis orders and flips, plus an oblique one (rotated 20 deg about z).
_C, _S = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
AFFINES = {
    "RAS": np.diag([0.8, 0.8, 3.0, 1.0]),
    "LPS": np.array([[-0.7, 0, 0, 90.5], [0, -0.7, 0, 110.25], [0, 0, 2.5, -40.0], [0, 0, 0, 1]]),
    "PIR": np.array([[0, 0, 3.3, -20.0], [-0.6, 0, 0, 40.0], [0, -0.6, 0, 300.0], [0, 0, 0, 1]]),
    "oblique": np.array(
        [
            [0.9 * _C, -0.9 * _S, 0, 1.1],
            [0.9 * _S, 0.9 * _C, 0, -2.2],
            [0, 0, 4.0, 3.3],
            [0, 0, 0, 1],
        ]
    ),
}
DTYPES = [np.int16, np.uint8, np.int32, np.float32, np.float64]


def _volume(affine, dtype=np.int16, shape=(70, 40, 9), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume((rng.random(shape) * 200).astype(dtype), np.asarray(affine, dtype=float))


@pytest.mark.parametrize("orient", sorted(AFFINES))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_keeps_voxels_dtype_and_affine_exactly(tmp_path, orient, dtype):
    store = CohortStore(tmp_path / "c.zarr")
    vol = _volume(AFFINES[orient], dtype)
    store.write_volume("sub-001", "image", vol)
    back = store.read_volume("sub-001", "image")
    assert back.data.dtype == vol.data.dtype
    assert back.shape == vol.shape
    np.testing.assert_array_equal(back.data, vol.data)
    assert np.array_equal(back.affine, vol.affine)  # bit-exact, not allclose


def test_big_endian_voxels_come_back_with_the_same_values(tmp_path):
    store = CohortStore(tmp_path / "c.zarr")
    vol = _volume(AFFINES["RAS"], np.dtype(">i2"))
    store.write_volume("sub-001", "image", vol)
    back = store.read_volume("sub-001", "image")
    assert back.data.dtype == np.int16
    np.testing.assert_array_equal(back.data, vol.data)


def test_attributes_chunks_and_ngff_metadata(tmp_path):
    """Geometry and provenance on the array; NGFF 0.5 multiscales (mm scale) on the group."""
    store = CohortStore(tmp_path / "c.zarr")
    vol = _volume(AFFINES["PIR"], shape=(150, 70, 9))
    store.write_volume("sub-001_ses-2", "image", vol, source="/data/x.nii.gz", sha256="ab" * 32)
    group = zarr.open_group(tmp_path / "c.zarr" / "sub-001_ses-2" / "image", mode="r")
    array = group["0"]
    assert array.metadata.dimension_names == ("z", "y", "x")
    assert array.shape == (9, 70, 150)
    assert array.chunks == (9, 64, 64)
    attrs = array.attrs
    assert attrs["orientation"] == "PIR"
    assert attrs["spacing"] == pytest.approx([0.6, 0.6, 3.3])
    assert attrs["source"] == "/data/x.nii.gz" and attrs["sha256"] == "ab" * 32
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5"
    (ms,) = ome["multiscales"]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert all(a["unit"] == "millimeter" for a in ms["axes"])
    scale, translation = ms["datasets"][0]["coordinateTransformations"]
    assert ms["datasets"][0]["path"] == "0"
    assert scale["scale"] == pytest.approx([3.3, 0.6, 0.6])
    # axis i points to -A (j = -y world): origin projected on it is -40 mm
    assert translation["translation"] == pytest.approx([-20.0, -300.0, -40.0])
    assert group.attrs["spineps_dask"]["complete"] is True
    assert "image-label" not in ome


def test_label_volumes_are_marked_as_ngff_labels(tmp_path):
    store = CohortStore(tmp_path / "c.zarr")
    store.write_volume("sub-001", "image", _volume(AFFINES["RAS"], np.float32))
    store.write_volume("sub-001", "semantic", _volume(AFFINES["RAS"], np.uint8))
    meta = json.loads((tmp_path / "c.zarr/sub-001/image/labels/semantic/zarr.json").read_text())
    assert meta["attributes"]["ome"]["image-label"]["source"]["image"] == "../../"
    assert store.volumes("sub-001") == ["image", "semantic"]


def test_xarray_opens_a_volume_with_dims_and_mm_coords(tmp_path):
    store = CohortStore(tmp_path / "c.zarr")
    vol = _volume(AFFINES["PIR"])
    store.write_volume("sub-001", "image", vol)
    ds = xr.open_zarr(tmp_path / "c.zarr", group="sub-001/image", consolidated=False)
    assert ds["0"].dims == ("z", "y", "x")
    da = store.open_xarray("sub-001", "image")
    assert da.dims == ("z", "y", "x") and da.chunks is not None  # lazy, dask-backed
    assert da.shape == vol.shape[::-1]
    np.testing.assert_array_equal(da.values, vol.data.transpose(2, 1, 0))
    # coordinate along each voxel axis = world position projected on the axis direction
    p = np.array([13, 27, 5])
    world = vol.affine[:3, :3] @ p + vol.affine[:3, 3]
    dirs = vol.affine[:3, :3] / np.array(vol.spacing)
    expected = dirs.T @ world  # along i, j, k
    got = [float(da["x"][p[0]]), float(da["y"][p[1]]), float(da["z"][p[2]])]
    assert got == pytest.approx(expected.tolist())
    assert da["z"].attrs["units"] == "mm"
    assert np.array_equal(np.asarray(da.attrs["affine"]), vol.affine)


def test_a_write_killed_before_the_end_never_counts_as_done(tmp_path, monkeypatch):
    """Failure injection: the final attribute update dies, as if the task were killed."""
    store = CohortStore(tmp_path / "c.zarr")
    store.write_volume("sub-001", "semantic", _volume(AFFINES["RAS"], np.uint8))
    assert store.has_volume("sub-001", "semantic")

    def killed(self, *args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(zarr.Group, "update_attributes", killed)
    with pytest.raises(RuntimeError, match="killed"):
        store.write_volume("sub-001", "semantic", _volume(AFFINES["RAS"], np.uint8, seed=1))
    monkeypatch.undo()
    assert not store.has_volume("sub-001", "semantic")
    assert store.volumes("sub-001") == []
    with pytest.raises(StoreError, match="missing or incomplete"):
        store.read_volume("sub-001", "semantic")


def test_subjects_lists_groups_and_ignores_the_manifest(tmp_path):
    store = CohortStore(tmp_path / "c.zarr")
    for sub in ("sub-010", "sub-002_ses-1"):
        store.write_volume(sub, "image", _volume(AFFINES["RAS"]))
    (tmp_path / "c.zarr" / "manifest.parquet").write_bytes(b"x")
    assert store.subjects() == ["sub-002_ses-1", "sub-010"]
    assert not store.has_volume("sub-999", "image")
    store.delete_subject("sub-010")
    assert store.subjects() == ["sub-002_ses-1"]


def test_read_only_mode_and_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no cohort store"):
        CohortStore(tmp_path / "nothing.zarr", mode="r")
    CohortStore(tmp_path / "c.zarr").write_volume("sub-001", "image", _volume(AFFINES["RAS"]))
    ro = CohortStore(tmp_path / "c.zarr", mode="r")
    assert ro.has_volume("sub-001", "image")
    with pytest.raises(StoreError, match="read-only"):
        ro.write_volume("sub-002", "image", _volume(AFFINES["RAS"]))


@pytest.mark.parametrize("subject", ["sub-../x", "sub-1/..", "001", "sub-a_b"])
def test_subject_keys_with_path_characters_are_refused(tmp_path, subject):
    store = CohortStore(tmp_path / "c.zarr")
    with pytest.raises(InputError, match="not of the form"):
        store.write_volume(subject, "image", _volume(AFFINES["RAS"]))


@pytest.mark.parametrize("name", ["../image", "a/b", "", "x/"])
def test_volume_names_with_path_characters_are_refused(tmp_path, name):
    store = CohortStore(tmp_path / "c.zarr")
    with pytest.raises(StoreError, match="volume name"):
        store.write_volume("sub-001", name, _volume(AFFINES["RAS"]))


def test_store_pickles_to_its_url_and_keys_name_the_volume(tmp_path):
    """Task graphs carry the store (reopened on the worker) or a VolumeKey, not arrays."""
    store = CohortStore(tmp_path / "c.zarr")
    key = store.write_volume("sub-001", "image", _volume(AFFINES["RAS"]))
    clone = pickle.loads(pickle.dumps(store))
    assert clone.has_volume(key.subject, key.name)
    assert str(key).endswith("c.zarr#sub-001/image")


def test_secrets_in_urls_are_redacted():
    url = "s3://AKIAXX:s3cr3t@bucket/c.zarr?X-Amz-Signature=deadbeef&versionId=3"
    red = redact_url(url)
    assert "s3cr3t" not in red and "deadbeef" not in red
    assert red.startswith("s3://AKIAXX:***@bucket/c.zarr") and "versionId=3" in red
    assert redact_url("/local/path.zarr") == "/local/path.zarr"


def test_open_array_reads_windows_in_voxel_order(tmp_path):
    """A cutout window read through the lazy view equals the same window of the volume."""
    store = CohortStore(str(tmp_path / "s.zarr"))
    data = np.arange(30 * 40 * 20, dtype=np.int32).reshape(30, 40, 20)
    store.write_volume("sub-1", "work", Volume(data, np.eye(4)))
    view = store.open_array("sub-1", "work")
    assert view.shape == data.shape
    np.testing.assert_array_equal(view[2:10, 5:7, 3:19], data[2:10, 5:7, 3:19])


def test_blobs_and_volume_deletion(tmp_path):
    """Snapshots live beside the volumes; work arrays can be dropped; names cannot escape."""
    store = CohortStore(str(tmp_path / "s.zarr"))
    store.write_volume("sub-1", "work", Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4)))
    store.write_volume("sub-1", "semantic", Volume(np.ones((4, 4, 4), np.uint8), np.eye(4)))
    store.write_blob("sub-1", "snapshot.png", b"\x89PNG")
    assert store.read_blob("sub-1", "snapshot.png") == b"\x89PNG"
    store.delete_volume("sub-1", "work")
    assert store.volumes("sub-1") == ["semantic"]
    with pytest.raises(StoreError, match="not allowed"):
        store.write_blob("sub-1", "../escape.png", b"x")


def test_deleting_a_volume_whose_metadata_a_full_disk_cut_short(tmp_path):
    """A work array whose ``zarr.json`` came out empty (the disk filled while it was created)
    is not a readable array, but its folder is still removed: a failed subject leaves no work
    array behind (tests/cli/test_console.py's full-disk run)."""
    store = CohortStore(str(tmp_path / "s.zarr"))
    store.write_volume("sub-1", "semantic", Volume(np.ones((4, 4, 4), np.uint8), np.eye(4)))
    cut = tmp_path / "s.zarr" / "sub-1" / "work_prepared"
    cut.mkdir()
    (cut / "zarr.json").write_bytes(b"")
    store.delete_volume("sub-1", "work_prepared")
    assert not cut.exists() and store.volumes("sub-1") == ["semantic"]


def test_ome_zarr_reader_finds_the_masks_in_the_images_labels_group(tmp_path):
    """Issue 21 item 12: what napari-ome-zarr and ``ome_zarr info`` do with an image path: the
    masks are found in its ``labels/`` group, each a label image with names and colours."""
    reader = pytest.importorskip("ome_zarr.reader", reason="ome-zarr is not installed")
    from ome_zarr.io import parse_url

    store = CohortStore(tmp_path / "c.zarr")
    store.write_volume("sub-001", "image", _volume(AFFINES["PIR"]))
    mask = np.zeros((70, 40, 9), np.uint8)
    mask[10:20, 5:15, 2:5], mask[30:40, 5:15, 2:5] = 49, 61
    store.write_volume("sub-001", "semantic", Volume(mask, AFFINES["PIR"]))
    store.write_volume(
        "sub-001", "instance", Volume((mask > 0).astype(np.uint8) * 20, AFFINES["PIR"])
    )
    location = parse_url(str(tmp_path / "c.zarr/sub-001/image"))
    assert location is not None and location.version == "0.5"
    nodes = list(reader.Reader(location)())
    specs = {
        node.zarr.path.rsplit("/", 1)[-1]: [type(s).__name__ for s in node.specs] for node in nodes
    }
    assert "Multiscales" in specs["image"] and "Labels" in specs["labels"]
    assert "Label" in specs["semantic"] and "Label" in specs["instance"]
    assert nodes[0].data[0].shape == (9, 40, 70)
    label = store._group("sub-001", "semantic").attrs["ome"]["image-label"]
    assert label["source"] == {"image": "../../"}
    assert {p["label-value"]: p["name"] for p in label["properties"]} == {
        49: "Vertebra Corpus",
        61: "Spinal Canal",
    }
    assert [c["label-value"] for c in label["colors"]] == [49, 61]


def test_masks_of_a_store_written_before_the_labels_group_are_still_read(tmp_path):
    """A mask beside the image (the layout before issue 21) is found, read and deleted as
    before, and moves into ``image/labels/`` when it is written again."""
    store = CohortStore(tmp_path / "c.zarr")
    store.write_volume("sub-001", "image", _volume(AFFINES["RAS"]))
    mask = _volume(AFFINES["RAS"], np.uint8)
    store.write_volume("sub-001", "semantic", mask)
    root = tmp_path / "c.zarr/sub-001"
    (root / "image/labels/semantic").rename(root / "semantic")  # the old layout
    assert store.has_volume("sub-001", "semantic") and store.volumes("sub-001") == [
        "image",
        "semantic",
    ]
    np.testing.assert_array_equal(store.read_volume("sub-001", "semantic").data, mask.data)
    assert store.open_xarray("sub-001", "semantic").shape == mask.shape[::-1]
    store.write_volume("sub-001", "semantic", mask)
    assert not (root / "semantic").exists() and (root / "image/labels/semantic").is_dir()
    store.delete_volume("sub-001", "semantic")
    assert store.volumes("sub-001") == ["image"]


def test_many_writers_creating_one_new_store_at_once_all_succeed(tmp_path):
    """Root and subject groups are created by whichever writer comes first; none may fail."""
    from concurrent.futures import ThreadPoolExecutor

    def write(i):
        store = CohortStore(tmp_path / f"c{i // 6}.zarr")
        store.write_volume(f"sub-{i % 2}", f"v{i}", _volume(AFFINES["RAS"], shape=(4, 4, 4)))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(24)))
    for k in range(4):
        store = CohortStore(tmp_path / f"c{k}.zarr", mode="r")
        assert sum(len(store.volumes(s)) for s in store.subjects()) == 6
