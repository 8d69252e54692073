"""A tiny synthetic spine (semantic + merge-style instance masks) for pipeline tests."""

from __future__ import annotations

import numpy as np

BODY, DISC = 6, 2


def build_spine(
    discs_above: list[bool],
    *,
    sacrum: bool = False,
    margin: int = 6,
    cord_below: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertebrae stacked along axis 1 (inferior), one bool per vertebra: a disc above it?

    Returns (semantic, instance) of shape (8, H, 8): bodies (49) 6 rows tall with a posterior
    arch (41), discs (100) 2 rows, instance ids 1..N top -> bottom, an L5-S1 disc and a sacrum
    (26) 12 rows tall below the last vertebra when ``sacrum``; a spinal canal (61) runs the
    full height, as it reaches the edge of a real field of view. With ``cord_below=k`` a spinal
    cord (60) runs in the canal from the top to the disc under vertebra k (0-based).
    """
    n = len(discs_above)
    height = margin + n * (BODY + DISC) + (DISC + 12 if sacrum else 0) + margin
    sem = np.zeros((8, height, 8), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    sem[0, :, 3:5] = 61
    row = margin
    for k, disc in enumerate(discs_above, start=1):
        if disc:
            sem[1:6, row : row + DISC, 1:7] = 100
        if disc or k > 1:
            row += DISC
        sem[1:6, row : row + BODY, 1:7] = 49
        sem[6:8, row + 1 : row + BODY - 1, 3:5] = 41
        inst[1:6, row : row + BODY, 1:7] = k
        inst[6:8, row + 1 : row + BODY - 1, 3:5] = k
        row += BODY
        if k - 1 == cord_below:
            sem[0, : row + 1, 3] = 60
    if sacrum:
        sem[1:6, row : row + DISC, 1:7] = 100
        row += DISC
        sem[1:7, row : row + 12, 1:7] = 26
    return sem, inst
