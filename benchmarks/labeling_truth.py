"""Labelling models side by side on held-out phantom views, named from their true masks.

    PYTHONPATH=. python benchmarks/labeling_truth.py --per-kind 20 [--model DIR ...]

Naming alone, as VERIDAH scores it on a given segmentation: patches cut from each view's
ground-truth masks, the classifier, the sequence solver (`labeling_eval.naming_scores`). The
model card measures 6 views per kind, too few to tell two models apart in thoracic-only views
(a whole view shifts by one level or not); this takes more, the same views for every model.
`benchmarks/labeling.py` gives the end-to-end figures (through the segmentation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import torch

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.models.labeling import LabelingModel
    from spineps_dask.training.labeling import LabelingTrainConfig
    from spineps_dask.training.labeling_eval import heldout_views, naming_scores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=20, help="held-out views of each kind")
    ap.add_argument(
        "--model", type=Path, action="append", help="labelling folder (repeat; default: demo)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = LabelingTrainConfig()
    start = time.perf_counter()
    views = heldout_views(cfg, args.per_kind)
    print(f"{len(views)} held-out views in {time.perf_counter() - start:.0f} s")
    for folder in args.model or [DEMO_MODELS / "labeling"]:
        model = LabelingModel.from_folder(folder, device="cpu")
        if model.patch_settings != cfg.patch_settings:  # the views were cut for the demo's
            raise SystemExit(f"{folder}: patches {model.patch_settings}, views cut for another")
        start = time.perf_counter()
        scores = naming_scores(model.network, views, model.patch_settings)
        print(f"{folder} ({time.perf_counter() - start:.0f} s):")
        print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
