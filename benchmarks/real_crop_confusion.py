"""Where the real crop's canal and cord go wrong, per semantic model (issue 17).

    PYTHONPATH=. python benchmarks/real_crop_confusion.py [--semantic-model DIR ...] [--slices]

Runs the semantic phase on the tptbox real T2w crop with `real_crop_edges.py`'s functions (the
reference recipe, no N4) and prints, for the spinal canal (61) and the cord (60), the true
voxels by the label predicted on them and the predicted voxels by their true label: which
neighbour a miss went to, and where a false hit came from. ``--slices`` adds true, predicted
and shared canal voxels per sagittal slice (the left-right spread). ``--tolerance`` prints, with
no model, what one voxel (1.5 mm) of error costs each structure's Dice on this crop: the true
mask against itself moved one voxel along each axis, and grown or shrunk by one voxel at its
front and back. ``--grid-ceiling`` prints, with no model, what a perfect semantic model on the
model's grid would score: the true labels put on that grid and back by nearest neighbour, as
the reference recipe moves predicted labels.
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


def _moved(mask: np.ndarray, axis: int) -> np.ndarray:
    """``mask`` one voxel further along ``axis``; what leaves the array is dropped."""
    out = np.zeros_like(mask)
    src, dst = [slice(None)] * mask.ndim, [slice(None)] * mask.ndim
    src[axis], dst[axis] = slice(0, -1), slice(1, None)
    out[tuple(dst)] = mask[tuple(src)]
    return out


def one_voxel_costs(truth: np.ndarray, codes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Dice of each true structure against itself moved one voxel along each axis (named by
    its ``codes`` letter pair), and grown or shrunk by one voxel along anterior-posterior."""
    from scipy import ndimage

    from benchmarks.real_crop_edges import GROUPS
    from spineps_dask.training.demo_eval import dice

    pairs = {"A": "AP", "P": "AP", "S": "SI", "I": "SI", "L": "LR", "R": "LR"}
    ap_axis = [pairs[c] for c in codes].index("AP")
    line = np.ones([3 if a == ap_axis else 1 for a in range(truth.ndim)], bool)
    out = {}
    for name, labels in GROUPS.items():
        t = np.isin(truth, labels)
        row = {f"moved {pairs[c]}": dice(_moved(t, a), t) for a, c in enumerate(codes)}
        row["grown AP"] = dice(ndimage.binary_dilation(t, line), t)
        row["shrunk AP"] = dice(ndimage.binary_erosion(t, line), t)
        out[name] = row
    return out


def grid_ceiling(truth: np.ndarray, affine: np.ndarray, orientation, spacing) -> dict:
    """Dice of each structure's true mask against itself moved onto a model grid (axis codes
    ``orientation``, mm ``spacing`` in that order) and back, nearest neighbour both ways."""
    from benchmarks.real_crop_edges import group_dice
    from spineps_dask.geometry import Volume, resample_to
    from spineps_dask.models.semantic import rescale

    grid = rescale(Volume(truth, affine).reorient(tuple(orientation)), spacing, order=0)
    back = np.asarray(resample_to(grid, truth.shape, affine, order=0).data)
    return group_dice(back, truth)


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
    ap.add_argument("--tolerance", action="store_true", help="what one voxel costs (no model)")
    ap.add_argument(
        "--grid-ceiling", action="store_true", help="perfect labels on the model grid (no model)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    image, truth = real_crop()
    if args.grid_ceiling:
        from spineps_dask.models.config import CONFIG_NAME, load_config

        for folder in args.semantic_model or [DEMO_MODELS / "semantic"]:
            cfg = load_config(Path(folder) / CONFIG_NAME)
            codes, mm = cfg.model_expected_orientation, cfg.resolution_range
            row = grid_ceiling(truth, image.affine, codes, mm)
            print(f"{''.join(codes)} {mm} mm: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
        return
    if args.tolerance:
        costs = one_voxel_costs(truth, nib.aff2axcodes(image.affine))
        print(f"{'Dice':<8}" + "".join(f"{k:>11}" for k in next(iter(costs.values()))))
        for name, row in costs.items():
            print(f"{name:<8}" + "".join(f"{v:>11.3f}" for v in row.values()))
        return
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
