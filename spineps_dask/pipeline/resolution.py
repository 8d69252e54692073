"""Millimetre thresholds as voxel counts, the way `spineps` 2.1.3 converts them.

The reference states its cleaning and merging thresholds in millimetres, derived from its T2w
models' grid (``REFERENCE_ZOOM``), and converts them with the zoom of the array at hand
(``spineps/utils/resolution.py``); its reference mode here does the same, including Python's
round-half-to-even.

Examples
--------
>>> mm3_to_voxels(30 * REFERENCE_VOXEL_MM3, (3.0, 1.5, 1.5))
4
>>> mm_to_voxels(3.0, (1.5, 1.5, 3.0))
2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The reference's T2w model grid (P, I, R mm).
REFERENCE_ZOOM: tuple[float, float, float] = (0.75, 0.75, 1.65)
REFERENCE_VOXEL_MM3: float = float(np.prod(REFERENCE_ZOOM))


def mm3_to_voxels(volume_mm3: float, zoom: Sequence[float], *, minimum: int = 1) -> int:
    """A volume as a voxel count at ``zoom``, at least ``minimum``."""
    return max(round(volume_mm3 / float(np.prod(zoom))), minimum)


def mm_to_voxels(distance_mm: float, zoom: Sequence[float], *, minimum: int = 0) -> int:
    """A distance as whole voxels of the finest axis, at least ``minimum``."""
    return max(round(distance_mm / float(min(zoom))), minimum)
