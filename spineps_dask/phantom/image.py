"""T2-weighted image from the label map: tissue signal, texture, partial volume, bias, noise.

T2w contrast (issue 3): CSF and disc nuclei bright, cord intermediate, bone marrow darker,
endplates dark, muscle dark grey, subcutaneous fat bright, air black. The image is a
by-product for training and demos; the label geometry is the ground truth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spineps_dask.labels import Semantic
from spineps_dask.phantom.spec import PhantomSpec

# Relative T2w signal per structure (CSF = 1).
_SIGNAL = {
    0: 0.22,
    Semantic.ARCUS: 0.30,
    Semantic.SPINOSUS: 0.30,
    Semantic.COSTALIS_LEFT: 0.30,
    Semantic.COSTALIS_RIGHT: 0.30,
    Semantic.ARTICULARIS_SUP_LEFT: 0.30,
    Semantic.ARTICULARIS_SUP_RIGHT: 0.30,
    Semantic.ARTICULARIS_INF_LEFT: 0.30,
    Semantic.ARTICULARIS_INF_RIGHT: 0.30,
    Semantic.CORPUS: 0.40,
    Semantic.SACRUM: 0.36,
    Semantic.CORD: 0.50,
    Semantic.CANAL: 1.00,
    Semantic.ENDPLATE: 0.10,
    Semantic.DISC: 0.30,
}
_LUT = np.zeros(256, np.float32)
for _label, _value in _SIGNAL.items():
    _LUT[int(_label)] = _value


def _interp_matrix(n: int, m: int) -> np.ndarray:
    """``(n, m)`` linear-interpolation weights from ``m`` coarse nodes to ``n`` fine samples."""
    pos = np.linspace(0, m - 1, n)
    lo = np.minimum(np.floor(pos).astype(int), m - 2)
    frac = (pos - lo).astype(np.float32)
    out = np.zeros((n, m), np.float32)
    out[np.arange(n), lo] = 1 - frac
    out[np.arange(n), lo + 1] = frac
    return out


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], cells) -> np.ndarray:
    """Random field varying over about ``cells`` voxels per axis (coarse grid, linear upsampling
    as three matrix products: far cheaper than ``ndimage.zoom`` on the full grid)."""
    coarse = [max(2, int(np.ceil(n / c)) + 1) for n, c in zip(shape, cells, strict=True)]
    field = rng.standard_normal(coarse).astype(np.float32)
    for axis, n in enumerate(shape):
        field = np.moveaxis(
            np.tensordot(_interp_matrix(n, coarse[axis]), field, (1, axis)), 0, axis
        )
    return np.ascontiguousarray(field)


def _body_outline(axes, curve: np.ndarray, spec: PhantomSpec) -> tuple[np.ndarray, np.ndarray]:
    """Masks of air behind the back and of the subcutaneous fat layer in front of it."""
    y, z = axes[1], axes[2]
    order = np.argsort(curve[:, 3])
    spine_y = np.interp(z, curve[order, 3], curve[order, 2])
    skin = spine_y - (spec.fov_ap_mm[1] - 12.0)
    depth = y[:, None] - skin[None, :]  # mm in front of the skin, (Y, Z)
    return (depth < 0)[None], ((depth >= 0) & (depth < 10.0))[None]


def t2w_image(semantic: np.ndarray, disc_signal: np.ndarray, axes, curve, spec: PhantomSpec):
    """Float32 T2w image on the same RAS grid as ``semantic``.

    Parameters
    ----------
    semantic
        ``(X, Y, Z)`` uint8 labels on the RAS-aligned grid.
    disc_signal
        Per-voxel disc signal painted with the discs (nucleus bright, annulus dark).
    axes, curve
        Voxel-centre coordinates per world axis and the spine centreline (``(n, 4)``: s, x, y, z).
    """
    rng = np.random.default_rng([spec.seed, 11])
    shape = semantic.shape
    spacing = np.array(spec.world_spacing)
    img = _LUT[semantic]
    discs = semantic == Semantic.DISC
    img[discs] = np.maximum(disc_signal[discs], 0.25)
    air, fat = _body_outline(axes, curve, spec)
    tissue = semantic == 0
    img[tissue & np.broadcast_to(fat, shape)] = 0.8
    img[tissue & np.broadcast_to(air, shape)] = 0.0
    img *= 1.0 + 0.12 * _smooth_field(rng, shape, 12.0 / spacing)  # blobs of about 12 mm
    img = ndimage.gaussian_filter(img, sigma=0.5, mode="nearest")  # partial volume
    img *= _bias(rng, shape, spec.bias_strength)
    sigma = 1.0 / spec.snr
    noise = rng.standard_normal(shape, dtype=np.float32) * sigma
    if spec.rician:
        img = np.sqrt(
            (img + noise) ** 2 + (rng.standard_normal(shape, dtype=np.float32) * sigma) ** 2
        )
    else:
        img = np.abs(img + noise)
    return (img * spec.intensity_scale).astype(np.float32)


def _bias(rng: np.random.Generator, shape: tuple[int, ...], strength: float) -> np.ndarray:
    """Smooth multiplicative field exp(low-order polynomial) of peak amplitude ~ ``strength``.

    Separable (a product of one exponential per axis), so it costs one broadcast multiply.
    """
    coeffs = rng.uniform(-1, 1, size=(3, 2))
    field = np.ones((1, 1, 1), np.float32)
    for k, n in enumerate(shape):
        x = np.linspace(-1, 1, n, dtype=np.float32)
        term = np.exp(strength / 2 * (coeffs[k, 0] * x + coeffs[k, 1] * (x**2 - 1 / 3)))
        field = field * term.reshape([-1 if i == k else 1 for i in range(3)])
    return field
