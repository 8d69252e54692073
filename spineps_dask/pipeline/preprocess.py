"""Prepare a scan for the semantic model and put its outputs back afterwards.

Two recipes (issue 22):

- ``reference`` (the default), what `spineps` 2.1.3 does (``phase_pre.preprocess_input``): shift
  the minimum to 0 and scale down to at most 1500 *in the scan's own dtype* (an int16 scan stays
  int16, truncated), N4 on the non-zero box only, written back into the whole image, then 4 zero
  voxels of padding around the whole image. The grid is not cropped: the semantic model's
  resampling is anchored on the first voxel, so a crop would move every sample.
- ``native``, this project's earlier recipe: crop to the non-zero box, float32 min-max to
  0..1500, pad 4; the semantic model then lets nnU-Net resample. Kept as an option for models
  trained that way.

The reference runs N4 through ANTs at full resolution (~26 s a scan, a major CPU cost); here
SimpleITK's N4 fits the field on a shrunk copy and applies it at full resolution, which takes
seconds. `preprocess` returns a `CropRecord`; `undo_crop_pad` uses it to return any array
computed on the preprocessed grid to the input's exact shape and affine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spineps_dask.geometry import Volume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessSettings:
    """``max_intensity`` and ``pad`` are the reference's. ``n4_shrink`` is how much coarser the
    grid is on which the bias field is fitted (per axis, never below 8 voxels an axis): the
    field is smooth, and the fit's cost grows with the voxels it sees (measured on a
    16x320x320 scan, 1 thread: shrink 8 -> ~2 s CPU, shrink 4 -> ~12 s, same correction)."""

    max_intensity: float = 1500.0
    pad: int = 4
    n4: bool = False
    recipe: str = "reference"
    #: False for CT models: the reference leaves CT intensities (Hounsfield units) as they are,
    #: skips N4 and pads with the scan's minimum (nnU-Net's CTNormalization does the rest).
    normalize: bool = True
    n4_shrink: int = 8
    n4_iterations: tuple[int, ...] = (50, 50, 50)


@dataclass(frozen=True, eq=False)
class CropRecord:
    """What `preprocess` did to the grid: the input's shape and affine, the kept box, the pad."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    pad: int
    recipe: str = "native"


def nonzero_box(data: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Smallest box ``[lo, hi)`` holding every non-zero voxel (the whole array if none)."""
    nz = np.nonzero(data)
    if len(nz[0]) == 0:
        return (0, 0, 0), tuple(data.shape)
    return tuple(int(a.min()) for a in nz), tuple(int(a.max()) + 1 for a in nz)


def normalize_intensity(data: np.ndarray, *, max_intensity: float = 1500.0) -> np.ndarray:
    """Min-max rescale to ``[0, max_intensity]`` (float32), so every scan enters the model alike.

    Examples
    --------
    >>> normalize_intensity(np.array([10.0, 20.0, 30.0])).tolist()
    [0.0, 750.0, 1500.0]
    """
    data = np.asarray(data, dtype=np.float32)
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros_like(data)
    return ((data - lo) * (max_intensity / (hi - lo))).astype(np.float32)


def normalize_like_reference(data: np.ndarray, *, max_intensity: float = 1500.0) -> np.ndarray:
    """Shift the minimum to 0; if the maximum then exceeds ``max_intensity``, scale it down to it.

    The dtype is kept, as TPTBox ``NII.normalize_to_range_`` keeps it: an integer scan is
    truncated to integers after scaling. A scan already within 0..1500 is only shifted.

    Examples
    --------
    >>> normalize_like_reference(np.array([-10, 0, 2990], dtype=np.int16)).tolist()
    [0, 5, 1500]
    >>> normalize_like_reference(np.array([5.0, 105.0])).tolist()
    [0.0, 100.0]
    """
    data = np.asarray(data)
    with np.errstate(over="ignore"):  # unsigned minus its minimum wraps exactly as TPTBox's does
        shifted = data + (-data.min())
    shifted = shifted.astype(data.dtype, copy=False)
    top = shifted.max()
    if top > max_intensity:
        shifted = (shifted * (max_intensity / top)).astype(data.dtype)
    return shifted


def n4_correct(
    data: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    shrink: int = 8,
    iterations: tuple[int, ...] = (50, 50, 50),
) -> np.ndarray:
    """N4 bias-field correction: fit on a shrunk copy inside an Otsu mask, divide at full size.

    ``data`` is (X, Y, Z) float, non-negative; returns float32 of the same shape.
    """
    import SimpleITK as sitk  # heavy, and only needed when N4 is on

    img = sitk.GetImageFromArray(np.ascontiguousarray(data, dtype=np.float32))
    img.SetSpacing(tuple(float(v) for v in reversed(spacing)))  # SimpleITK axes are (Z, Y, X)
    mask = sitk.OtsuThreshold(img, 0, 1, 200)
    factors = [max(1, min(shrink, n // 8)) for n in img.GetSize()]
    small, small_mask = sitk.Shrink(img, factors), sitk.Shrink(mask, factors)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    n4.Execute(small, small_mask)
    log_bias = n4.GetLogBiasFieldAsImage(img)
    corrected = sitk.GetArrayFromImage(img / sitk.Exp(log_bias))
    return corrected.astype(np.float32)


def preprocess(
    vol: Volume, *, settings: PreprocessSettings | None = None
) -> tuple[Volume, CropRecord]:
    """Normalise, optionally N4-correct, and pad the scan as ``settings.recipe`` says.

    Returns the new `Volume` (its affine places every voxel where it was) and the `CropRecord`
    for `undo_crop_pad`.
    """
    s = settings or PreprocessSettings()
    if s.recipe == "reference":
        return _preprocess_reference(vol, s)
    if s.recipe != "native":
        raise ValueError(f"unknown recipe {s.recipe!r}; use 'reference' or 'native'")
    lo, hi = nonzero_box(vol.data)
    data = np.asarray(vol.data[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))], np.float32)
    if s.n4:
        data = n4_correct(
            np.maximum(data, 0), vol.spacing, shrink=s.n4_shrink, iterations=s.n4_iterations
        )
    data = np.pad(normalize_intensity(data, max_intensity=s.max_intensity), s.pad)
    shift = np.eye(4)
    shift[:3, 3] = np.asarray(lo) - s.pad
    record = CropRecord(vol.shape, np.array(vol.affine, dtype=float), lo, hi, s.pad)  # type: ignore[arg-type]
    return Volume(data, vol.affine @ shift), record


def _preprocess_reference(vol: Volume, s: PreprocessSettings) -> tuple[Volume, CropRecord]:
    """``spineps`` ``preprocess_input``: normalise, N4 (and normalise again) inside the non-zero
    box, put the box back, pad the whole image with zeros. The dtype is the scan's. Without
    ``normalize`` (CT) the intensities stay and the pad takes the scan's minimum."""
    if not s.normalize:
        floor = np.asarray(vol.data).min()
        data = np.pad(np.asarray(vol.data), s.pad, constant_values=floor)
        shift = np.eye(4)
        shift[:3, 3] = -s.pad
        record = CropRecord(
            vol.shape, np.array(vol.affine, dtype=float), (0, 0, 0), vol.shape, s.pad, "reference"
        )
        return Volume(data, vol.affine @ shift), record
    data = normalize_like_reference(vol.data, max_intensity=s.max_intensity)
    lo, hi = nonzero_box(data)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    inner = data[box]
    if s.n4:
        inner = n4_correct(
            np.maximum(inner, 0), vol.spacing, shrink=s.n4_shrink, iterations=s.n4_iterations
        )
    data = data.copy()
    data[box] = normalize_like_reference(inner, max_intensity=s.max_intensity)
    data = np.pad(data, s.pad)
    shift = np.eye(4)
    shift[:3, 3] = -s.pad
    full = (0, 0, 0)
    record = CropRecord(
        vol.shape, np.array(vol.affine, dtype=float), full, vol.shape, s.pad, recipe="reference"
    )
    return Volume(data, vol.affine @ shift), record


def undo_crop_pad(labels: Volume | np.ndarray, record: CropRecord, *, fill: int = 0) -> Volume:
    """Put an array computed on the preprocessed grid back into the input's shape and affine.

    Voxels the crop removed get ``fill``; the dtype is kept.
    """
    data = labels.data if isinstance(labels, Volume) else np.asarray(labels)
    expected = tuple(b - a + 2 * record.pad for a, b in zip(record.lo, record.hi, strict=True))
    if data.shape != expected:
        raise ValueError(f"array shape {data.shape} is not the preprocessed shape {expected}")
    p = record.pad
    inner = data[p : data.shape[0] - p, p : data.shape[1] - p, p : data.shape[2] - p]
    out = np.full(record.shape, fill, dtype=data.dtype)
    out[tuple(slice(a, b) for a, b in zip(record.lo, record.hi, strict=True))] = inner
    return Volume(out, record.affine.copy())


def crop_pad(vol: Volume, record: CropRecord) -> Volume:
    """Apply `preprocess`'s crop and pad to another volume on the input grid (a given mask).

    The inverse of `undo_crop_pad`; the dtype is kept.
    """
    if vol.shape != record.shape:
        raise ValueError(f"volume shape {vol.shape} is not the input shape {record.shape}")
    box = tuple(slice(a, b) for a, b in zip(record.lo, record.hi, strict=True))
    data = np.pad(np.asarray(vol.data)[box], record.pad)
    shift = np.eye(4)
    shift[:3, 3] = np.asarray(record.lo) - record.pad
    return Volume(data, record.affine @ shift)
