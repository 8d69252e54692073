"""Does the scan's edge inside the network's window cost the real crop? (issue 17)

    PYTHONPATH=. python benchmarks/real_crop_edges.py [--rows 24] [--semantic-model DIR ...]

The tptbox real T2w crop is 78 mm tall, the demo semantic window 144 mm: nnU-Net's sliding
window pads it with zeros, so its top and bottom lie inside every window. This runs the
semantic phase (`pipeline.segment.prepare` + `semantic_phase`, the reference recipe, no N4)
on the crop as it is and with its top and bottom rows repeated ``--rows`` times (a test, not
the pipeline's recipe), and scores the crop's own voxels against its real mask. A model that
has learnt the edge (`train-demo --fov-cut`) gains nothing from the padding.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

GROUPS = {"body": (49, 50), "ivd": (100,), "canal": (61,), "cord": (60,)}


def group_dice(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per issue-17 structure (`GROUPS`) of a predicted semantic mask against the truth
    (`training.demo_eval.dice`: 1.0 where both lack it)."""
    from spineps_dask.training.demo_eval import dice

    return {name: dice(np.isin(pred, labs), np.isin(truth, labs)) for name, labs in GROUPS.items()}


def real_crop():
    """The tptbox real T2w crop: its image (a `Volume`) and its true semantic labels."""
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.training.demo_eval import real_crop_files

    files = real_crop_files("sample_mri")
    return load_volume(files["image"]), np.asarray(load_volume(files["subreg"]).data)


def semantic_on_scan(scan, model) -> np.ndarray:
    """The semantic phase on ``scan`` (the reference recipe, no N4), labels on its own grid."""
    from spineps_dask.geometry import resample_to
    from spineps_dask.pipeline.segment import prepare, semantic_phase

    prepared, record = prepare(scan, n4=False, subject="tptbox", recipe="reference")
    grid = semantic_phase(prepared, model, recipe="reference")
    return np.asarray(resample_to(grid, record.shape, record.affine, order=0).data)


def main() -> None:
    import nibabel as nib
    import torch

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.geometry import Volume
    from spineps_dask.models.semantic import SemanticModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=24, help="rows repeated above and below")
    ap.add_argument("--semantic-model", type=Path, action="append", help="folder (repeat)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    image, truth = real_crop()
    axis = [c in "SI" for c in nib.aff2axcodes(image.affine)].index(True)
    pads = [(args.rows, args.rows) if a == axis else (0, 0) for a in range(3)]
    affine = image.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([p[0] for p in pads], float)
    padded = Volume(np.pad(np.asarray(image.data, np.float32), pads, mode="edge"), affine)
    inside = tuple(slice(a, a + s) for (a, _), s in zip(pads, truth.shape, strict=True))
    print(f"{'model':<40}{'scan':<10}" + "".join(f"{g:>8}" for g in GROUPS))
    for folder in args.semantic_model or [DEMO_MODELS / "semantic"]:
        model = SemanticModel.from_folder(folder, device="cpu")
        for name, scan, keep in (("as is", image, ...), (f"+{args.rows} rows", padded, inside)):
            pred = semantic_on_scan(scan, model)[keep]
            scores = "".join(f"{v:>8.3f}" for v in group_dice(pred, truth).values())
            print(f"{str(folder)[-40:]:<40}{name:<10}{scores}")


if __name__ == "__main__":
    main()
