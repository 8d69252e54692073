"""Write ``docs/phantoms.png`` (mid-sagittal slices of six phantoms with the semantic overlay)
and ``docs/appearance.png`` (one anatomy in T2w, T1w and six randomised looks, issue 17).

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
            sac = {"cord_offset": drawn.cord_offset, "sac_inset": drawn.sac_inset}
        phantom = make_phantom(anatomy, appearance=look, seed=seed, **sac)
        panel(ax, phantom, overlay=False)
        ax.set_title(f"{look} (seed {seed})", fontsize=8)
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
