"""OME-NGFF 0.5 metadata and millimetre axis coordinates for one stored volume.

NGFF (https://ngff.openmicroscopy.org/0.5/) only knows per-axis scale and translation, no
rotation, so the exact voxel -> world map stays in the ``affine`` attribute and NGFF gets the
axis-aligned part: the coordinate of a voxel along array axis ``i`` is its world position
projected on that axis's direction, ``u_i . (A p + o) = spacing_i * p_i + u_i . o``
(exact when the affine's columns are orthogonal, which holds for all but sheared scans).
"""

from __future__ import annotations

import numpy as np

from spineps_dask.geometry import voxel_spacing

NGFF_VERSION = "0.5"
# Stored arrays are the NIfTI voxel array transposed, so dims read (z, y, x) = (k, j, i):
# the order NGFF recommends and napari expects (style-examples rule 6).
DIMS: tuple[str, str, str] = ("z", "y", "x")


def axis_origin(affine: np.ndarray) -> np.ndarray:
    """Per voxel axis (i, j, k): the origin projected on the axis direction, in mm."""
    affine = np.asarray(affine, dtype=float)
    spacing = voxel_spacing(affine)
    directions = affine[:3, :3] / np.where(spacing == 0, 1.0, spacing)[None, :]
    return directions.T @ affine[:3, 3]


def axis_coords(affine: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Millimetre coordinates of voxel centres along each stored dim (``z``, ``y``, ``x``)."""
    spacing = voxel_spacing(affine)
    origin = axis_origin(affine)
    ijk = {dim: idx for dim, idx in zip(DIMS, (2, 1, 0), strict=True)}
    return {
        dim: origin[i] + spacing[i] * np.arange(shape[i], dtype=float) for dim, i in ijk.items()
    }


def label_colour(value: int) -> list[int]:
    """A fixed, distinct RGBA colour per label value (golden-angle hues), the same everywhere."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((value * 0.618033988749895) % 1.0, 0.65, 0.95)
    return [round(255 * r), round(255 * g), round(255 * b), 255]


def image_label(source: str, names: dict[int, str]) -> dict:
    """NGFF ``image-label`` metadata: where the image is, each label's colour and name."""
    values = sorted(names)
    return {
        "source": {"image": source},
        "colors": [{"label-value": v, "rgba": label_colour(v)} for v in values],
        "properties": [{"label-value": v, "name": names[v]} for v in values],
    }


def multiscales(name: str, affine: np.ndarray, *, path: str = "0") -> dict:
    """The ``ome`` group attribute: one single-level multiscale image with mm scale/translation."""
    spacing = voxel_spacing(affine)[::-1]
    origin = axis_origin(affine)[::-1]
    return {
        "version": NGFF_VERSION,
        "multiscales": [
            {
                "name": name,
                "axes": [{"name": d, "type": "space", "unit": "millimeter"} for d in DIMS],
                "datasets": [
                    {
                        "path": path,
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [float(s) for s in spacing]},
                            {"type": "translation", "translation": [float(t) for t in origin]},
                        ],
                    }
                ],
            }
        ],
    }
