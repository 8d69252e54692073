"""Fast per-label measurements that only look inside each label's bounding box."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def box_centroids(label_array: np.ndarray, labels: list[int] | None = None) -> dict[int, tuple]:
    """Centre of mass (voxels) of each label, computed inside its bounding box only.

    Much faster than ``ndimage.center_of_mass`` with labels, which sweeps the whole volume once
    per axis; absent labels are left out.
    """
    arr = label_array if label_array.dtype.kind in "iu" else label_array.astype(np.intp)
    boxes = ndimage.find_objects(arr)
    wanted = range(1, len(boxes) + 1) if labels is None else labels
    out: dict[int, tuple] = {}
    for lbl in wanted:
        if lbl < 1 or lbl > len(boxes) or boxes[lbl - 1] is None:
            continue
        box = boxes[lbl - 1]
        idx = np.nonzero(arr[box] == lbl)
        out[int(lbl)] = tuple(float(i.mean()) + b.start for i, b in zip(idx, box, strict=True))
    return out
