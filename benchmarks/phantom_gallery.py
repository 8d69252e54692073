"""Write ``docs/phantoms.png`` (mid-sagittal slices of six phantoms with the semantic overlay),
``docs/appearance.png`` (one anatomy in T2w, T1w and six randomised looks, issue 17) and
``docs/conus.png`` (the tptbox real crop's conus beside the textbook and set phantom ones).

Usage: ``python benchmarks/phantom_gallery.py [OUT_DIR]``. A visual check that the phantoms
look like spines in every region, stored orientation and contrast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from spineps_dask.phantom import make_phantom, sample_spec
from spineps_dask.phantom.spec import RANDOM_LOOK_FIELDS

CASES = (
    (1, {"region": "whole", "orientation": ("P", "I", "R")}),
    (2, {"region": "cervical", "orientation": ("R", "A", "S")}),
    (3, {"region": "thoracic", "orientation": ("L", "P", "S")}),
    (4, {"region": "lumbar", "orientation": ("A", "S", "R")}),
    (5, {"region": "lumbar", "orientation": ("P", "I", "L"), "has_l6": True}),
    (6, {"region": "cervical", "orientation": ("P", "I", "R"), "c1_in_view": False}),
)


def panel(ax, phantom, *, overlay: bool = True) -> None:
    """Draw one phantom's mid-sagittal image (optionally with the semantic overlay), in mm."""
    img = phantom.image.reorient(("L", "P", "S"))
    sem = phantom.semantic.reorient(("L", "P", "S"))
    mid = img.shape[0] // 2
    # Show with S up and A to the left: rows = S (flipped), columns = A..P.
    image = img.data[mid].T[::-1]
    labels = sem.data[mid].T[::-1].astype(float)
    _, sy, sz = img.spacing
    extent = (0, image.shape[1] * sy, 0, image.shape[0] * sz)
    ax.imshow(image, cmap="gray", extent=extent, vmax=np.percentile(image, 99.5))
    if overlay:
        masked = np.ma.masked_where(labels == 0, labels)
        ax.imshow(masked, cmap="tab20", alpha=0.35, extent=extent, vmin=0, vmax=110,
                  interpolation="nearest")  # fmt: skip
    spec = phantom.spec
    ax.set_title(
        f"seed {spec.seed} {spec.region} {''.join(spec.orientation)}\n"
        f"{'x'.join(f'{s:.1f}' for s in spec.spacing)} mm, SNR {spec.snr:.0f}",
        fontsize=7,
    )
    ax.axis("off")


def appearances(out: Path) -> None:
    """One lumbar anatomy (seed 8) in each contrast: what the semantic model trains on."""
    looks = [("t2w", 8), ("t1w", 8), *(("random", 500 + k) for k in range(6))]
    fig, axes = plt.subplots(1, len(looks), figsize=(16, 5), dpi=60)
    anatomy = make_phantom(8, region="lumbar", orientation=("P", "I", "R")).spec
    for ax, (look, seed) in zip(axes, looks, strict=True):
        # A random look is drawn from the seed: vary it, keep the anatomy's drawn fields but
        # the sac's (the cord place and the sac inset a random look draws, as in training).
        sac = {}
        if look == "random":
            drawn = sample_spec(seed, appearance=look)
            sac = {k: getattr(drawn, k) for k in RANDOM_LOOK_FIELDS}
        phantom = make_phantom(anatomy, appearance=look, seed=seed, **sac)
        panel(ax, phantom, overlay=False)
        ax.set_title(f"{look} (seed {seed})", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


def _cord_slice(ax, image, labels, spacing, title: str, rows: slice = slice(None)) -> None:
    """The L-P-S sagittal slice with the most cord, S up, the cord filled (red), the sac's
    fluid outlined (cyan), 25 mm either side of the sac."""
    x = int(np.argmax((labels == 60).sum(axis=(1, 2))))
    image, labels = image[x].T[::-1][rows], labels[x].T[::-1][rows]
    sac = np.flatnonzero(np.isin(labels, (60, 61)).any(axis=0))
    margin = round(25.0 / float(spacing[1]))
    cols = slice(max(sac.min() - margin, 0), sac.max() + margin + 1)
    image, labels = image[:, cols], labels[:, cols]
    extent = (0, image.shape[1] * spacing[1], 0, image.shape[0] * spacing[2])
    ax.imshow(image, cmap="gray", extent=extent, vmax=np.percentile(image, 99.5))
    cord = np.ma.masked_where(labels != 60, np.ones(labels.shape))
    ax.imshow(cord, cmap="autumn", alpha=0.5, extent=extent, interpolation="nearest")
    ax.contour(labels == 61, [0.5], colors="c", linewidths=0.8, origin="upper", extent=extent)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


#: Conus settings shown beside the real crop's (`PhantomSpec.conus_end`, `conus_taper_mm`,
#: `cord_flatten`): the three a session-20 trial's random looks drew for seeds 500-502.
CONUS_CASES = (
    {"conus_end": 19.9, "conus_taper_mm": 29.0, "cord_flatten": 0.49},
    {"conus_end": 20.3, "conus_taper_mm": 25.0, "cord_flatten": 0.77},
    {"conus_end": 18.6, "conus_taper_mm": 18.0, "cord_flatten": 0.56},
)


def conus(out: Path) -> None:
    """The real crop's cord end (T11-L1) beside one anatomy's textbook conus and three set
    ones (issue 17), each in T2w, T11 to L2."""
    from benchmarks.real_crop_edges import real_crop
    from spineps_dask.geometry import Volume
    from spineps_dask.labels import VERTEBRA_IDS

    fig, axes = plt.subplots(1, 5, figsize=(14, 6), dpi=72)
    image, truth = real_crop()
    real = [v.reorient(("L", "P", "S")) for v in (image, Volume(truth, image.affine))]
    _cord_slice(axes[0], real[0].data, real[1].data, real[0].spacing, "tptbox real T2w (T11-L1)")
    kw = {"region": "lumbar", "orientation": ("L", "P", "S"), "spacing": (1.0, 1.0, 1.0)}
    kw |= {"has_t13": False, "has_l6": False}
    for ax, extra in zip(axes[1:], [{}, *CONUS_CASES], strict=True):
        ph = make_phantom(8, **kw, **extra)
        ends = np.isin(ph.instance.data, (VERTEBRA_IDS["T11"], VERTEBRA_IDS["L2"]))
        z = np.flatnonzero(ends.any(axis=(0, 1)))
        rows = slice(ph.image.shape[2] - 1 - z.max(), ph.image.shape[2] - z.min())
        title = "textbook" if not extra else (
            f"end {extra['conus_end']:.1f}, taper {extra['conus_taper_mm']:.0f} mm, "
            f"flatten {extra['cord_flatten']:.2f}")  # fmt: skip
        _cord_slice(ax, ph.image.data, ph.semantic.data, ph.image.spacing, title, rows)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


def main(out: Path) -> None:
    fig, axes = plt.subplots(2, len(CASES), figsize=(12, 10), dpi=60)
    for k, (seed, overrides) in enumerate(CASES):
        phantom = make_phantom(seed, **overrides)
        panel(axes[0, k], phantom, overlay=False)
        panel(axes[1, k], phantom)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs")
    main(folder / "phantoms.png")
    appearances(folder / "appearance.png")
    conus(folder / "conus.png")
