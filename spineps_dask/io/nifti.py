"""NIfTI files <-> `Volume`. The only place that opens or writes NIfTI."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume
from spineps_dask.io.atomic import atomic_write

logger = logging.getLogger(__name__)


def load_volume(
    path: str | os.PathLike,
    *,
    dtype: type | None = None,
    max_bytes: int | None = None,
    expect_shape: tuple[int, ...] | None = None,
    notes: list[str] | None = None,
) -> Volume:
    """Read a 3D NIfTI file with its qform/sform affine.

    ``max_bytes`` refuses a scan whose voxels (header shape x stored dtype size) would take
    more memory than that, and ``expect_shape`` one whose header gives another grid (a
    reference mask beside its scan): both from the header alone, before any voxel is read.
    Warnings about a geometry that is kept (oblique axes, a qform that disagrees with the
    sform; they say which is used) are logged and appended to ``notes``.

    Raises
    ------
    InputError
        The file is missing, not a NIfTI image, truncated, not 3D, over ``max_bytes`` or not
        of ``expect_shape``.
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
    if expect_shape is not None:
        shape = tuple(int(n) for n in img.shape)
        shape = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
        if shape != tuple(expect_shape):
            raise InputError(
                f"{path.name} has shape {shape} in its header, its scan "
                f"{tuple(expect_shape)}; it must lie on the scan's grid (refused before "
                "reading its voxels)"
            )
    if max_bytes is not None:
        check_size(path.name, tuple(img.shape), np.dtype(img.get_data_dtype()), max_bytes)
    found = _check_header(path, img)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(f"cannot read {path.name} as NIfTI: {exc}. Is the file complete?") from exc
    for note in found:
        logger.warning("%s", note)
    if notes is not None:
        notes.extend(found)
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


def _check_header(path: Path, img: SpatialImage) -> list[str]:
    """Refuse headers whose geometry nibabel would silently guess or repair; return warnings.

    nibabel replaces a zero or negative ``pixdim`` by 1 or its absolute value, a data offset
    inside the header by the header's end, and, without qform and sform, invents an
    orientation; a scan segmented in a guessed geometry gives plausible-looking but wrong
    vertebra labels, so such files must be fixed at the source. What is kept but worth a
    look (an oblique grid, a qform that disagrees with the sform) comes back as warnings that
    say which geometry is used.
    """
    # nibabel types headers as the generic SpatialHeader; NIfTI fields are read by name.
    header: Any = img.header
    header_type: Any = type(header)
    if not hasattr(header_type, "from_fileobj") or "qform_code" not in header:
        return []
    with nib.openers.ImageOpener(str(path)) as fh:
        raw = header_type.from_fileobj(fh, check=False)  # pixdim as written, not repaired
    sform, qform = int(raw["sform_code"]), int(raw["qform_code"])
    if sform == 0 and qform == 0:
        raise InputError(
            f"{path.name} has no orientation (qform_code and sform_code are 0); set a qform or "
            "sform (e.g. re-export from the scanner or DICOM converter)"
        )
    zooms = [float(z) for z in raw["pixdim"][1:4]]
    if sform == 0 and not all(np.isfinite(z) and z > 0 for z in zooms):
        raise InputError(
            f"{path.name}: voxel spacing (pixdim) {zooms} has zero or negative entries (or "
            "non-finite ones) and no sform overrides it; fix the header's pixdim"
        )
    offsets = [float(raw[f"qoffset_{a}"]) for a in "xyz"]
    if sform == 0 and not all(np.isfinite(offsets)):
        raise InputError(
            f"{path.name}: the qform's offsets (qoffset_x/y/z) {offsets} are not finite and no "
            "sform overrides them; fix the header"
        )
    # One file (magic n+1 / n+2): the voxels follow the header and its 4-byte extension flag.
    # nibabel reads an offset of 0 from the file's first byte: header bytes become voxels.
    first = int(raw["sizeof_hdr"]) + 4
    if bytes(raw["magic"].item()).startswith(b"n+") and float(raw["vox_offset"]) < first:
        raise InputError(
            f"{path.name}: its data offset (vox_offset {float(raw['vox_offset']):g}) lies "
            f"inside the {first}-byte header, so the voxels would be read from the wrong place; "
            "fix the header (re-save the file)"
        )
    return _geometry_notes(path.name, img, sform=sform, qform=qform)


def _geometry_notes(name: str, img: Any, *, sform: int, qform: int) -> list[str]:
    """Warnings about a geometry that is used as it is: which affine, and how oblique."""
    notes = []
    used = "sform" if sform > 0 else "qform"
    if sform > 0 and qform > 0:
        diff = float(np.abs(img.get_sform() - img.get_qform()).max())
        if diff > 1e-3:
            notes.append(
                f"{name}: its sform and qform disagree (by up to {diff:.3g} mm); the sform is "
                "used (as nibabel and most tools do), check that it is the right one"
            )
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero axis: validate refuses it
        degrees = np.nan_to_num(np.degrees(nib.affines.obliquity(img.affine)))
    if float(np.max(degrees)) > 1.0:
        notes.append(
            f"{name}: its voxel axes are oblique to the scanner axes (by up to "
            f"{float(np.max(degrees)):.1f} degrees, from the {used}); the masks stay on the "
            "scan's own grid and the models see it turned to the nearest axes"
        )
    return notes


def save_volume(vol: Volume, path: str | os.PathLike) -> Path:
    """Write a Volume as NIfTI (gzip when the name ends in .gz), creating parent folders.

    The file is written under a temporary name and renamed, so a reader never sees half a file.
    """
    img = nib.Nifti1Image(vol.data, vol.affine)
    img.set_qform(vol.affine, code=1)
    img.set_sform(vol.affine, code=1)
    return atomic_write(path, lambda tmp: nib.save(img, str(tmp)))
