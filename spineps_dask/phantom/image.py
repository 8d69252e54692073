"""The image from the label map: tissue signal, texture, partial volume, bias, noise.

The contrast comes from `appearance` (issue 17): T2w by default (issue 3: CSF and disc nuclei
bright, cord intermediate, bone marrow darker, endplates dark, muscle dark grey, subcutaneous
fat bright, air black), T1w, or a randomised look with extra blur, gamma and a motion ghost.
The image is a by-product for training and demos; the label geometry is the ground truth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spineps_dask.labels import Semantic
from spineps_dask.phantom.appearance import Look, look
from spineps_dask.phantom.spec import PhantomSpec


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


def _background(axes, curve: np.ndarray, spec: PhantomSpec, lk: Look) -> np.ndarray:
    """``(1, Y, Z)`` signal outside the spine: muscle, a subcutaneous fat layer, air behind."""
    y, z = axes[1], axes[2]
    order = np.argsort(curve[:, 3])
    spine_y = np.interp(z, curve[order, 3], curve[order, 2])
    skin = spine_y - (spec.fov_ap_mm[1] - 12.0)
    depth = y[:, None] - skin[None, :]  # mm in front of the skin, (Y, Z)
    out = np.where(depth < 0, 0.0, np.where(depth < 10.0, lk.fat, lk.lut[0]))
    return out.astype(np.float32)[None]


def _epidural(semantic: np.ndarray, spacing, thickness_mm: float) -> np.ndarray:
    """Background voxels within ``thickness_mm`` of the dural sac (canal and cord), in a
    straight line: the epidural fat between the sac and the bony arch (and a little outside
    a thin arch, where fat lies too)."""
    sac = np.isin(semantic, (int(Semantic.CANAL), int(Semantic.CORD)))
    out = np.zeros(semantic.shape, bool)
    if not sac.any():
        return out
    pad = [int(np.ceil(thickness_mm / s)) + 1 for s in spacing]
    box = tuple(
        slice(max(0, int(i.min()) - p), int(i.max()) + p + 1)
        for i, p in zip(np.nonzero(sac), pad, strict=True)
    )
    near = ndimage.distance_transform_edt(~sac[box], sampling=spacing) <= thickness_mm
    out[box] = near & (semantic[box] == 0)
    return out


def _roots(semantic: np.ndarray, z_mm: np.ndarray, spacing, share: float, seed: int):
    """Canal voxels that show nerve roots: strands ~1.5 mm across and ~30 mm long along the
    superior axis, ``share`` of the sac below the conus (and 15 mm up beside it; all of it
    when no cord is in view, none when the cord runs out of the field of view)."""
    canal = semantic == int(Semantic.CANAL)
    cord_z = np.flatnonzero((semantic == int(Semantic.CORD)).any(axis=(0, 1)))
    if cord_z.size and z_mm[cord_z.min()] <= z_mm.min() + 1e-3:
        return np.zeros(semantic.shape, bool)
    top = z_mm[cord_z.min()] + 15.0 if cord_z.size else np.inf
    canal[:, :, z_mm > top] = False
    if not canal.any():
        return canal
    cells = np.array([1.5, 1.5, 30.0]) / np.asarray(spacing)
    field = _smooth_field(np.random.default_rng([seed, 17]), semantic.shape, cells)
    return canal & (field > np.quantile(field[canal], 1.0 - share))


def render_image(semantic: np.ndarray, disc_signal: np.ndarray, axes, curve, spec: PhantomSpec):
    """Float32 image of ``spec.appearance`` on the same RAS grid as ``semantic``.

    Parameters
    ----------
    semantic
        ``(X, Y, Z)`` uint8 labels on the RAS-aligned grid.
    disc_signal
        Disc signal painted with the discs (nucleus bright, annulus dark), 0 elsewhere.
    axes, curve
        Voxel-centre coordinates per world axis and the spine centreline (``(n, 4)``: s, x, y, z).

    Notes
    -----
    Written with in-place operations: image synthesis is most of the cost of a phantom.
    """
    rng = np.random.default_rng([spec.seed, 11])
    # Its own stream: the T2w default draws nothing here, so its images stay as they were.
    lk = look(spec.appearance, np.random.default_rng([spec.seed, 13]))
    shape = semantic.shape
    img = np.where(semantic == 0, _background(axes, curve, spec, lk), lk.lut[semantic])
    if lk.epidural_mm > 0:
        epidural = lk.fat if lk.epidural is None else lk.epidural
        img[_epidural(semantic, spec.world_spacing, lk.epidural_mm)] = epidural
    if lk.roots > 0:
        img[_roots(semantic, axes[2], spec.world_spacing, lk.roots, spec.seed)] = lk.lut[
            int(Semantic.CORD)
        ]
    if lk.nucleus > 0:
        np.maximum(img, disc_signal * np.float32(lk.nucleus), out=img)
    texture = _smooth_field(rng, shape, 12.0 / np.array(spec.world_spacing))  # ~12 mm blobs
    texture *= np.float32(lk.spread)
    texture += 1.0
    img *= texture
    del texture
    img = ndimage.gaussian_filter(img, sigma=0.5, mode="nearest", truncate=2.0)  # partial volume
    if lk.blur_mm > 0:
        blur = [lk.blur_mm / s for s in spec.world_spacing]
        img = ndimage.gaussian_filter(img, sigma=blur, mode="nearest", truncate=2.0)
    if lk.ghost > 0:  # motion ghost along the phase-encoding (anterior-posterior) axis
        shift = round(lk.ghost_shift_mm / spec.world_spacing[1])
        img += np.float32(lk.ghost) * np.roll(img, shift, axis=1)
    for axis, term in enumerate(_bias_terms(rng, shape, spec.bias_strength)):
        img *= term.reshape([-1 if i == axis else 1 for i in range(3)])
    sigma = np.float32(1.0 / spec.snr)
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise *= sigma
    img += noise
    if spec.rician:  # magnitude of a complex signal with noise in both channels
        noise = rng.standard_normal(shape, dtype=np.float32, out=noise)
        noise *= sigma
        np.square(noise, out=noise)
        np.square(img, out=img)
        img += noise
        np.sqrt(img, out=img)
    else:
        np.abs(img, out=img)
    if lk.gamma != 1.0:
        top = np.float32(img.max() or 1.0)
        img /= top
        np.power(img, np.float32(lk.gamma), out=img)
        img *= top
    img *= np.float32(spec.intensity_scale)
    return img


def _bias_terms(rng: np.random.Generator, shape: tuple[int, ...], strength: float) -> list:
    """Smooth multiplicative bias, exp(low-order polynomial), as one factor per axis.

    Separable, so applying it costs three in-place broadcast multiplies.
    """
    coeffs = rng.uniform(-1, 1, size=(3, 2))
    terms = []
    for k, n in enumerate(shape):
        x = np.linspace(-1, 1, n, dtype=np.float32)
        poly = coeffs[k, 0] * x + coeffs[k, 1] * (x**2 - 1 / 3)
        terms.append(np.exp(strength / 2 * poly).astype(np.float32))
    return terms
