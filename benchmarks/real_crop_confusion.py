"""Where the real crop's canal and cord go wrong, per semantic model (issue 17).

    PYTHONPATH=. python benchmarks/real_crop_confusion.py [--semantic-model DIR ...] [--slices]

Runs the semantic phase on the tptbox real T2w crop with `real_crop_edges.py`'s functions (the
reference recipe, no N4) and prints, for the spinal canal (61) and the cord (60), the true
voxels by the label predicted on them and the predicted voxels by their true label: which
neighbour a miss went to, and where a false hit came from. ``--slices`` adds true, predicted
and shared canal voxels per sagittal slice (the left-right spread).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

NAMES = {0: "bg", 41: "arch", 42: "spinous", 45: "facet", 46: "facet", 47: "facet", 48: "facet",
         49: "body", 50: "endplate", 60: "cord", 61: "canal", 100: "IVD"}  # fmt: skip


def _by_label(values: np.ndarray) -> str:
    counts = Counter(NAMES.get(int(v), str(int(v))) for v in values)
    return ", ".join(f"{k} {n}" for k, n in counts.most_common())


def main() -> None:
    import nibabel as nib
    import torch

    from benchmarks.real_crop_edges import real_crop, semantic_on_scan
    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.models.semantic import SemanticModel
    from spineps_dask.training.demo_eval import dice

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--semantic-model", type=Path, action="append", help="folder (repeat)")
    ap.add_argument("--slices", action="store_true", help="canal voxels per sagittal slice")
    args = ap.parse_args()
    torch.set_num_threads(1)
    image, truth = real_crop()
    lr_axis = [c in "LR" for c in nib.aff2axcodes(image.affine)].index(True)
    for folder in args.semantic_model or [DEMO_MODELS / "semantic"]:
        model = SemanticModel.from_folder(folder, device="cpu")
        pred = semantic_on_scan(image, model)
        print(f"== {folder}")
        for label in (61, 60):
            t, p = truth == label, pred == label
            name = NAMES[label]
            print(f"{name}: Dice {dice(p, t):.3f}, true {int(t.sum())}, predicted {int(p.sum())}")
            print(f"  true {name} predicted as: {_by_label(pred[t])}")
            print(f"  predicted {name} truly:    {_by_label(truth[p])}")
        if args.slices:
            print("slice  true  predicted  shared (canal)")
            for k in range(truth.shape[lr_axis]):
                t, p = (np.take(a, k, lr_axis) == 61 for a in (truth, pred))
                if t.any() or p.any():
                    print(f"{k:5d} {int(t.sum()):5d} {int(p.sum()):10d} {int((t & p).sum()):7d}")


if __name__ == "__main__":
    main()
