"""Snapshot of one subject: mid-sagittal slice with mask overlay, plus a coronal projection.

Like the reference's ``*_snp.png``: enough to spot a wrong label or a missed vertebra at a
glance when browsing a cohort. The semantic panel has a legend of the structures it shows; the
instance panel names each vertebra in bold, outlined type that stays readable on a lumbar view.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from spineps_dask.geometry import Volume
from spineps_dask.io.atomic import write_file
from spineps_dask.labels import SEMANTIC_NAMES, instance_name

_VIEW = ("P", "I", "R")  # array axes after reorientation: columns A->P, rows S->I, slices L->R
#: Vertebra names on the instance panel: points, bold, with a dark outline.
LABEL_FONT_SIZE = 11


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
    """PNG bytes (and a file when ``path`` is given) of `snapshot_figure`."""
    fig = snapshot_figure(image, semantic, instance, title=title, dpi=dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        write_file(data, path)
    return data


def snapshot_figure(
    image: Volume, semantic: Volume, instance: Volume, *, title: str = "", dpi: int = 100
) -> Figure:
    """Three sagittal panels: image; image + semantic mask with a legend of its structures;
    image + instance mask with vertebra names at each vertebra's projected centre. All three
    volumes must share one geometry."""
    img = image.reorient(_VIEW)
    sp_p, sp_i, _ = img.spacing
    r_mid = _mid_slice(instance.reorient(_VIEW).data, img.shape[2])
    aspect = sp_i / sp_p
    colors = label_colors()
    cmap = ListedColormap(colors)
    # No pyplot: rendered by Agg on save, and a notebook's backend is left alone.
    fig = Figure(figsize=(12, 6.5), dpi=dpi)
    axes = fig.subplots(1, 3)
    lo, hi = np.percentile(img.data, [1, 99.5])
    overlay = {"vmin": 0, "vmax": 255, "aspect": aspect, "interpolation": "nearest"}
    for ax in axes:
        ax.imshow(img.data[:, :, r_mid].T, cmap="gray", vmin=lo, vmax=hi, aspect=aspect)
        ax.set_axis_off()
    axes[0].set_title(f"T2w (sagittal {r_mid})")
    sem = _sagittal(semantic, r_mid).astype(np.int32)
    axes[1].imshow(sem % 256, cmap=cmap, **overlay)
    axes[1].set_title("semantic")
    shown = [int(v) for v in np.unique(sem) if v in SEMANTIC_NAMES]
    handles = [
        Patch(color=(*colors[v % 256][:3], 0.9), label=SEMANTIC_NAMES[v].replace("_", " "))
        for v in shown
    ]
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(4, len(handles)),
            fontsize=9,
            frameon=False,
        )
    inst = instance.reorient(_VIEW)
    axes[2].imshow(inst.data[:, :, r_mid].T.astype(np.int32) % 256, cmap=cmap, **overlay)
    axes[2].set_title("instance")
    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
    for label, (p, i) in _label_positions(inst.data).items():
        if label < 100:
            axes[2].text(
                p,
                i,
                instance_name(label),
                color="white",
                fontsize=LABEL_FONT_SIZE,
                fontweight="bold",
                ha="center",
                va="center",
                path_effects=outline,
            )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
    return fig


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
