"""A new appearance for a training patch, drawn from its label map as it is sampled.

The phantoms' random looks are rendered once (`phantom.appearance.look`), so a training run
sees as many looks as it has random-look phantoms (96 for the shipped model). SynthSeg
(Billot et al., Medical Image Analysis 2023) draws a fresh appearance for every training
sample instead. This does that on a patch already cut: a random, not necessarily monotone,
curve over the patch's own intensities (so background tissues swap places too), a fresh mean
per labelled structure with its texture kept, a smooth multiplicative field that leaves no
structure evenly lit (issue 17: the tptbox crop's dural sac is dark at its back, labelled
canal), noise, and the patch z-scored as a scan of that look would be.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def redraw_look(x: np.ndarray, seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` (1, ...) with a new appearance drawn by ``rng``; ``seg`` (1, ...) class indices
    (0 and below: background, whose look comes from the curve alone). Float32, z-scored."""
    lo, hi = np.percentile(x, (0.5, 99.5))
    y = np.clip((x - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    knots = rng.uniform(0.0, 1.0, size=5)
    y = np.interp(y, np.linspace(0.0, 1.0, knots.size), knots)
    shift = np.zeros(y.shape, np.float32)
    for c in np.unique(seg):
        if c <= 0:
            continue
        inside = seg == c
        shift[inside] = rng.uniform(0.0, 1.0) - float(y[inside].mean())
    # Blurred as a scanner's partial volume blurs edges, so a structure's rim is not a step
    # that the curve's image lacks.
    y += ndimage.gaussian_filter(shift, sigma=(0, 0.6, 0.6, 0.6), mode="nearest")
    y *= np.exp(_smooth_field(y.shape[1:], rng) * rng.uniform(0.0, 0.5))[None]
    y += rng.normal(0.0, rng.uniform(0.0, 0.08), size=y.shape)
    return ((y - y.mean()) / max(float(y.std()), 1e-6)).astype(np.float32)


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-sd noise on a coarse 3-5 point grid per axis, interpolated to ``shape``."""
    coarse = rng.normal(0.0, 1.0, size=tuple(int(rng.integers(3, 6)) for _ in shape))
    zoom = [s / c for s, c in zip(shape, coarse.shape, strict=True)]
    field = ndimage.zoom(coarse, zoom, order=1, mode="nearest", grid_mode=True)
    return field[tuple(slice(0, s) for s in shape)]
