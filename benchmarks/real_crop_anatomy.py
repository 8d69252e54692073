"""Which part of the spine the tptbox real T2w crop shows, measured from its own masks.

    PYTHONPATH=. python benchmarks/real_crop_anatomy.py

The crop's instance mask numbers its vertebrae 5, 6 and 7 (C5-C7 by the SPINEPS ids), and
that is how it has been described. Its anatomy says otherwise: this prints each vertebral
body's extent (anterior-posterior, left-right, superior-inferior, in mm), where the spinal cord
ends, and the phantom's textbook dimensions of C6, T12, L1 and L3 beside them. The naming
figures of issue 20 on this crop are read against what this prints.
"""

from __future__ import annotations

import numpy as np


def main() -> None:
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.labels import VERTEBRA_IDS, Semantic
    from spineps_dask.phantom.anatomy import anchor_dims
    from spineps_dask.training.demo_eval import real_crop_files

    files = real_crop_files("sample_mri")
    sem_v = load_volume(files["subreg"])
    vert_v = load_volume(files["vert"])
    sem = sem_v.reorient(("P", "I", "R"))
    vert = vert_v.reorient(("P", "I", "R"))
    spacing = np.asarray(sem.spacing)
    names = {v: k for k, v in VERTEBRA_IDS.items()}
    print(f"crop {sem.data.shape} voxels of {spacing.tolist()} mm (P, I, R)")
    head = f"{'id (mask name)':<16}{'AP mm':>8}{'LR mm':>8}{'SI mm':>8}"
    print(head + "  (body bounding box) cut by the crop")
    for vid in sorted(set(np.unique(vert.data)) - {0}):
        if vid >= 100:
            continue
        body = np.argwhere((vert.data == vid) & (sem.data == Semantic.CORPUS))
        if not len(body):
            continue
        lo, hi = body.min(0), body.max(0)
        ext = (hi - lo + 1) * spacing
        cut = lo[1] == 0 or hi[1] == sem.data.shape[1] - 1
        name = f"{vid} ({names.get(int(vid), '?')})"
        print(f"{name:<16}{ext[0]:>8.0f}{ext[2]:>8.0f}{ext[1]:>8.0f}  {cut}")
    cord = np.argwhere(sem.data == Semantic.CORD)
    if len(cord):
        last = int(cord[:, 1].max())
        at = vert.data[:, last, :]
        beside = np.unique(at[(at > 0) & (at < 100)])
        print(
            f"spinal cord: {len(cord)} voxels, ends {last * spacing[1]:.0f} mm below the top "
            f"of the crop ({sem.data.shape[1] * spacing[1]:.0f} mm), level with vertebra "
            f"{beside.tolist()}"
        )
    print("phantom textbook dimensions (`phantom.anatomy.anchor_dims`, no scale or jitter):")
    for name in ("C6", "T12", "L1", "L3"):
        d = anchor_dims(VERTEBRA_IDS[name])
        print(
            f"  {name:<4} AP {d['depth']:.0f} mm, LR {d['width']:.0f} mm, SI {d['height']:.0f} mm"
        )


if __name__ == "__main__":
    main()
