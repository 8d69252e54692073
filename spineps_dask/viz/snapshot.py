"""Snapshot of one subject: mid-sagittal slice with mask overlay, plus a coronal projection.

Like the reference's ``*_snp.png``: enough to spot a wrong label or a missed vertebra at a
glance when browsing a cohort.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from spineps_dask.geometry import Volume
from spineps_dask.io.atomic import write_file
from spineps_dask.labels import instance_name

_VIEW = ("P", "I", "R")  # array axes after reorientation: columns A->P, rows S->I, slices L->R


def label_colors(n: int = 256, *, seed: int = 7) -> np.ndarray:
    """A fixed RGBA colour per label id (0 transparent), the same in every picture."""
    base = matplotlib.colormaps["tab20"](np.arange(20))
    rng = np.random.default_rng(seed)
    colors = base[rng.integers(0, 20, size=n)]
    colors[:, 3] = 0.55
    colors[0] = (0, 0, 0, 0)
    return colors


def _sagittal(vol: Volume, r: int) -> np.ndarray:
    return vol.reorient(_VIEW).data[:, :, r].T  # (I, P)


def render_snapshot(
    image: Volume,
    semantic: Volume,
    instance: Volume,
    *,
    title: str = "",
    path: str | Path | None = None,
    dpi: int = 100,
) -> bytes:
    """PNG bytes (and a file when ``path`` is given) of three sagittal panels.

    Image; image + semantic mask; image + instance mask with vertebra names at each vertebra's
    projected centre. All three volumes must share one geometry.
    """
    img = image.reorient(_VIEW)
    sp_p, sp_i, _ = img.spacing
    r_mid = _mid_slice(instance.reorient(_VIEW).data, img.shape[2])
    aspect = sp_i / sp_p
    cmap = ListedColormap(label_colors())
    # No pyplot: rendered by Agg on save, and a notebook's backend is left alone.
    fig = Figure(figsize=(12, 6), dpi=dpi)
    axes = fig.subplots(1, 3)
    lo, hi = np.percentile(img.data, [1, 99.5])
    panels = (("T2w", None), ("semantic", semantic), ("instance", instance))
    for ax, (name, mask) in zip(axes[:2], panels[:2], strict=True):
        ax.imshow(img.data[:, :, r_mid].T, cmap="gray", vmin=lo, vmax=hi, aspect=aspect)
        if mask is not None:
            ax.imshow(
                _sagittal(mask, r_mid).astype(np.int32) % 256,
                cmap=cmap,
                vmin=0,
                vmax=255,
                aspect=aspect,
                interpolation="nearest",
            )
        ax.set_title(f"{name} (sagittal {r_mid})")
    inst = instance.reorient(_VIEW)
    axes[2].imshow(img.data[:, :, r_mid].T, cmap="gray", vmin=lo, vmax=hi, aspect=aspect)
    axes[2].imshow(
        inst.data[:, :, r_mid].T.astype(np.int32) % 256,
        cmap=cmap,
        vmin=0,
        vmax=255,
        aspect=aspect,
        interpolation="nearest",
    )
    axes[2].set_title("instance")
    for label, (p, i) in _label_positions(inst.data).items():
        if label < 100:
            axes[2].text(
                p, i, instance_name(label), color="white", fontsize=7, ha="center", va="center"
            )
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        write_file(data, path)
    return data


def _mid_slice(labels_pir: np.ndarray, n_slices: int) -> int:
    """The L-R slice through the middle of the labelled spine (or the volume's middle)."""
    present = np.flatnonzero(labels_pir.any(axis=(0, 1)))
    return int(np.median(present)) if present.size else n_slices // 2


def _label_positions(labels_pir: np.ndarray) -> dict[int, tuple[float, float]]:
    """(P, I) centre of each label projected on the sagittal plane."""
    out = {}
    proj = labels_pir.max(axis=2)
    for label in np.unique(proj):
        if label == 0:
            continue
        p, i = np.nonzero(proj == label)
        out[int(label)] = (float(p.mean()), float(i.mean()))
    return out
