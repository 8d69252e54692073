"""NIfTI files <-> `Volume`. The only place that opens or writes NIfTI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume
from spineps_dask.io.atomic import atomic_write


def load_volume(
    path: str | os.PathLike, *, dtype: type | None = None, max_bytes: int | None = None
) -> Volume:
    """Read a 3D NIfTI file with its qform/sform affine.

    ``max_bytes`` refuses a scan whose voxels (header shape x stored dtype size) would take
    more memory than that, from the header alone, before any voxel is read.

    Raises
    ------
    InputError
        The file is missing, not a NIfTI image, truncated, not 3D, or over ``max_bytes``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        img = nib.load(str(path))  # reads the header only; voxels stay on disk
    except Exception as exc:  # nibabel raises many types for broken files
        raise InputError(f"cannot read {path.name} as NIfTI: {exc}. Is the file complete?") from exc
    if not isinstance(img, SpatialImage):
        raise InputError(f"{path.name} is not an image on a voxel grid ({type(img).__name__})")
    if max_bytes is not None:
        check_size(path.name, tuple(img.shape), np.dtype(img.get_data_dtype()), max_bytes)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(f"cannot read {path.name} as NIfTI: {exc}. Is the file complete?") from exc
    _check_header(path, img)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path.name} has shape {data.shape} ({data.ndim}D); a 3D scan is needed")
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    return Volume(data, np.asarray(img.affine, dtype=float))


def check_size(name: str, shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> None:
    """Refuse a scan whose voxels take more than ``max_bytes``, naming the limit and its knob.

    Raises
    ------
    InputError
        With the size, the limit and how to raise it.
    """
    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if need > max_bytes:
        raise InputError(
            f"{name}: {'x'.join(map(str, shape))} voxels of {dtype} take {_size(need)}, over "
            f"the {_size(max_bytes)} limit for one scan (refused before reading its voxels). "
            "If the workers have several times that memory, raise the limit "
            f"(`spineps-dask ingest --max-scan-gb {np.ceil(need / 2**30):.0f}`, or "
            "ScanLimits(max_bytes=...)); otherwise crop or resample the scan"
        )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _check_header(path: Path, img: SpatialImage) -> None:
    """Refuse headers whose geometry nibabel would silently guess or repair.

    nibabel replaces a zero or negative ``pixdim`` by 1 or its absolute value and, without
    qform and sform, invents an orientation; a scan segmented in a guessed geometry gives
    plausible-looking but wrong vertebra labels, so such files must be fixed at the source.
    """
    # nibabel types headers as the generic SpatialHeader; NIfTI fields are read by name.
    header: Any = img.header
    header_type: Any = type(header)
    if not hasattr(header_type, "from_fileobj") or "qform_code" not in header:
        return
    with nib.openers.ImageOpener(str(path)) as fh:
        raw = header_type.from_fileobj(fh, check=False)  # pixdim as written, not repaired
    if int(raw["sform_code"]) == 0 and int(raw["qform_code"]) == 0:
        raise InputError(
            f"{path.name} has no orientation (qform_code and sform_code are 0); set a qform or "
            "sform (e.g. re-export from the scanner or DICOM converter)"
        )
    zooms = [float(z) for z in raw["pixdim"][1:4]]
    if int(raw["sform_code"]) == 0 and any(z <= 0 for z in zooms):
        raise InputError(
            f"{path.name}: voxel spacing (pixdim) {zooms} has zero or negative entries and no "
            "sform overrides it; fix the header's pixdim"
        )


def save_volume(vol: Volume, path: str | os.PathLike) -> Path:
    """Write a Volume as NIfTI (gzip when the name ends in .gz), creating parent folders.

    The file is written under a temporary name and renamed, so a reader never sees half a file.
    """
    img = nib.Nifti1Image(vol.data, vol.affine)
    img.set_qform(vol.affine, code=1)
    img.set_sform(vol.affine, code=1)
    return atomic_write(path, lambda tmp: nib.save(img, str(tmp)))
