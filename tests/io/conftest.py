"""Small NIfTI cohorts written on the fly (a few kB each), so the io tests need no data files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

# Sagittal spine MRI geometry: 0.6 mm in-plane, 3.3 mm slices, PIR-like axis order.
SAGITTAL = np.array(
    [[0.0, 0.0, -3.3, 20.0], [-0.6, 0.0, 0.0, 40.0], [0.0, -0.6, 0.0, 300.0], [0, 0, 0, 1.0]]
)


def scan_data(seed: int = 0, shape=(24, 20, 6), dtype=np.int16) -> np.ndarray:
    """Seeded noise with a bright block, in the given dtype."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 400, size=shape)
    data[4:10, 5:15, 1:4] += 600
    return data.astype(dtype)


def write_scan(
    root: Path,
    sub: str,
    data: np.ndarray | None = None,
    *,
    affine: np.ndarray = SAGITTAL,
    ses: str | None = None,
    name: str | None = None,
) -> Path:
    """Write ``root/sub-X[/ses-Y]/anat/sub-X[_ses-Y]_T2w.nii.gz`` (or ``name``) and return it."""
    folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    path = folder / (name or f"{stem}_T2w.nii.gz")
    img = nib.Nifti1Image(scan_data() if data is None else data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    """A cohort folder with two good subjects (one with a session)."""
    root = tmp_path / "bids"
    write_scan(root, "001", scan_data(1))
    write_scan(root, "002", scan_data(2, dtype=np.float32), ses="1")
    return root


@pytest.fixture
def make_scan():
    """``write_scan`` as a fixture: ``make_scan(root, "001", data, affine=..., ses=...)``."""
    return write_scan


@pytest.fixture
def make_data():
    """``scan_data`` as a fixture: ``make_data(seed, shape, dtype)``."""
    return scan_data


def patch_header(
    path: Path,
    *,
    pixdim=None,
    qform_code=None,
    sform_code=None,
    shape=None,
    vox_offset=None,
    qoffset=None,
) -> Path:
    """Overwrite raw NIfTI-1 header fields of a .nii.gz (nibabel would repair them on save).

    ``shape``: the 3D size the header claims (the voxel data on disk stay as they are);
    ``vox_offset``: where the header says the voxels start; ``qoffset``: the qform's origin.
    """
    raw = bytearray(gzip.decompress(path.read_bytes()))
    if vox_offset is not None:
        raw[108:112] = struct.pack("<f", vox_offset)
    if qoffset is not None:
        raw[268:280] = struct.pack("<3f", *qoffset)
    if shape is not None:
        raw[42:48] = struct.pack("<3h", *shape)  # dim[1:4], offset 40 + 2
    if pixdim is not None:
        raw[80:92] = struct.pack("<3f", *pixdim)  # pixdim[1:4], offset 76 + 4
    if qform_code is not None:
        raw[252:254] = struct.pack("<h", qform_code)
    if sform_code is not None:
        raw[254:256] = struct.pack("<h", sform_code)
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


@pytest.fixture
def bad_header():
    """``patch_header`` as a fixture."""
    return patch_header
