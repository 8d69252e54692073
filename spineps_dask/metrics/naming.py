"""Whether each reference vertebra carries its true name in a predicted instance mask.

The naming benchmarks' measure (benchmarks/accuracy.py, benchmarks/labeling.py): a vertebra is
named right when the predicted vertebra label covering most of it is its own id. Unlike
`tables.identification_rate`, no instance matching: a name is judged even where the mask is
poor, so naming and segmentation can be told apart.
"""

from __future__ import annotations

import numpy as np

_S1 = 26  # the sacrum is not named by counting; left out as in `tables`


def named_right(
    pred: np.ndarray, ref: np.ndarray, *, min_voxels: float = 0
) -> dict[int, bool | None]:
    """Per reference vertebra (sacrum left out): does the predicted label covering most of
    it equal its id? None where no predicted vertebra covers it (the segmentation missed it:
    no naming can be right there).

    ``min_voxels``: leave out reference vertebrae with fewer voxels in view. The instance
    phase drops vertebrae under its ``vert_size_threshold`` (the reference's rule), so a
    sliver cut by the edge of the view cannot carry a name of its own; the benchmarks report
    the figure with and without them.

    Examples
    --------
    >>> ref = np.array([20, 20, 21, 21, 22])
    >>> named_right(np.array([20, 20, 22, 22, 0]), ref)
    {20: True, 21: False, 22: None}
    """
    out: dict[int, bool | None] = {}
    ids, sizes = np.unique(ref, return_counts=True)
    for v, size in zip(ids, sizes, strict=True):
        if not 0 < v < 100 or v == _S1 or size < min_voxels:
            continue
        hits = pred[ref == v]
        hits = hits[(hits > 0) & (hits < 100)]
        out[int(v)] = int(np.bincount(hits).argmax()) == int(v) if hits.size else None
    return out
