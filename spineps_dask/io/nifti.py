"""NIfTI files <-> `Volume`. The only place that opens or writes NIfTI."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume


def load_volume(path: str | os.PathLike, *, dtype: type | None = None) -> Volume:
    """Read a 3D NIfTI file with its qform/sform affine.

    Raises
    ------
    InputError
        The file is missing, not a NIfTI image, truncated, or not 3D.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for broken files
        raise InputError(f"cannot read {path.name} as NIfTI: {exc}. Is the file complete?") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path.name} has shape {data.shape} ({data.ndim}D); a 3D scan is needed")
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    return Volume(data, np.asarray(img.affine, dtype=float))


def save_volume(vol: Volume, path: str | os.PathLike) -> Path:
    """Write a Volume as NIfTI (gzip when the name ends in .gz), creating parent folders.

    The file is written under a temporary name and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(vol.data, vol.affine)
    img.set_qform(vol.affine, code=1)
    img.set_sform(vol.affine, code=1)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}" + "".join(path.suffixes))
    nib.save(img, str(tmp))
    os.replace(tmp, path)
    return path
