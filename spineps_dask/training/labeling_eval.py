"""Held-out scores of a labelling model on phantom views, and its model card.

`naming_scores` measures naming alone: patches cut from each view's ground-truth masks, the
classifier, the sequence solver. The end-to-end figures (the demo semantic and instance models
first, then the naming, as ``segment`` runs it) come from ``benchmarks/labeling.py`` and are
written into the card when the config carries them (``training.end_to_end``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineps_dask.labels import VERTEBRA_IDS
from spineps_dask.models.labeling import LabelingModel, LabelingNetwork
from spineps_dask.pipeline.naming import NamingSettings, model_naming
from spineps_dask.pipeline.patches import PatchSettings
from spineps_dask.training.config import lineage_lines
from spineps_dask.training.labeling_data import VIEW_MIX, ViewSample, view_sample

#: Held-out views: per kind this many, seeds HELDOUT_SEEDS + k (never trained on).
HELDOUT_PER_KIND = 6
HELDOUT_SEEDS = 100_500
_VARIANTS = {"T13": VERTEBRA_IDS["T13"], "L6": VERTEBRA_IDS["L6"]}


def heldout_views(cfg: Any, per_kind: int = HELDOUT_PER_KIND) -> list[ViewSample]:
    """``per_kind`` views of every kind in `VIEW_MIX` on seeds the training never used."""
    out = []
    for j, kind in enumerate(VIEW_MIX):
        for k in range(per_kind):
            out.append(view_sample(HELDOUT_SEEDS + 100 * j + k, kind, cfg.patch_settings))
    return out


def naming_scores(
    net: LabelingNetwork,
    views: Sequence[ViewSample],
    settings: PatchSettings,
    *,
    naming: NamingSettings | None = None,
) -> dict[str, Any]:
    """Per-patch and per-view accuracy of ``net`` on ground-truth patches of ``views``.

    ``patch_*``: the 26-class head's argmax; ``vertebrae_named_right``: after the sequence
    solver, overall and per view kind; ``subjects_all_right``: views with every vertebra right
    (VERIDAH's measure); ``T13`` / ``L6``: spines that show one, named right.
    """
    model = LabelingModel(net, settings, device="cpu")
    naming = naming or NamingSettings(method="model")
    true_all, pred_all = [], []
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    variants: dict[str, list[int]] = {k: [0, 0] for k in _VARIANTS}
    variants_by_view: dict[str, dict[str, list[int]]] = {k: {} for k in _VARIANTS}
    for view in views:
        post = model.predict(view.patches.astype(np.float32))
        true = [int(c) for c in view.targets["VERTEXACT"]]
        true_all += true
        pred_all += post["VERTEXACT"].argmax(1).tolist()
        result = model_naming(view.ids, post, settings=naming)
        right = [result.mapping[v] == v for v in view.ids]
        counts = per_kind[view.kind]
        counts[0] += sum(right)
        counts[1] += len(right)
        counts[2] += all(right)
        counts[3] += 1
        for name, vid in _VARIANTS.items():
            if vid in view.ids:
                for tally in (variants[name], variants_by_view[name].setdefault(view.kind, [0, 0])):
                    tally[0] += result.mapping[vid] == vid
                    tally[1] += 1
    kinds = {
        k: {"vertebrae": round(c[0] / c[1], 4), "subjects_all_right": f"{c[2]}/{c[3]}"}
        for k, c in per_kind.items()
    }
    named = sum(c[0] for c in per_kind.values())
    total = sum(c[1] for c in per_kind.values())
    return {
        "views": len(views),
        "patch_accuracy": round(float(np.mean(np.equal(true_all, pred_all))), 4),
        "patch_f1_macro": round(_macro_f1(true_all, pred_all), 4),
        "vertebrae_named_right": round(named / max(total, 1), 4),
        "subjects_all_right": round(sum(c[2] for c in per_kind.values()) / len(views), 4),
        "by_view": kinds,
        **{name: f"{right}/{n}" for name, (right, n) in variants.items()},
        # Only a view from C2 to the sacrum ("whole") fixes a T13 or L6 by counting; in the
        # others the classifier must tell it from its neighbours by shape alone.
        **{
            f"{name}_by_view": {kind: f"{r}/{n}" for kind, (r, n) in sorted(by.items())}
            for name, by in variants_by_view.items()
        },
    }


def _macro_f1(true: Sequence[int], pred: Sequence[int]) -> float:
    t, p = np.asarray(true), np.asarray(pred)
    f1 = []
    for c in np.unique(t):
        tp = np.sum((t == c) & (p == c))
        prec = tp / max(np.sum(p == c), 1)
        rec = tp / max(np.sum(t == c), 1)
        f1.append(0.0 if tp == 0 else 2 * prec * rec / (prec + rec))
    return float(np.mean(f1)) if f1 else 0.0


def write_card(folder: str | Path) -> Path:
    """``MODEL_CARD.md`` of a labelling folder from its ``inference_config.json``."""
    from spineps_dask.models.config import CONFIG_NAME, load_config

    folder = Path(folder)
    config = load_config(folder / CONFIG_NAME)
    t = config.training
    lines = [
        "# Demo labelling model (synthetic phantoms only)",
        "",
        "A vertebra classifier in the layout of `spineps` 2.x labelling models (the reference's "
        "`PLClassifier`: MONAI DenseNet121 backbone, heads VERTEXACT (26 classes, T13 and L6 "
        "their own), REGION, VERTREL), trained by `spineps_dask.training.labeling` on "
        "seeded phantom views (`spineps_dask.phantom`); **not for real MRI**. `spineps` 2.1.3 "
        "runs it with `-ml <this folder>`.",
        "",
        f"- command: `{t.get('command')}`",
        *lineage_lines(t),
        f"- seed: {t.get('seed')}; training views {t.get('train_view_seeds')} "
        f"({t.get('train_patches')} vertebra patches); held-out views "
        f"{HELDOUT_SEEDS}+ (per kind, never trained on)",
        f"- iterations: {t.get('iterations')} in {t.get('train_seconds')} s "
        f"(+ {t.get('data_seconds')} s making the views; final loss {t.get('final_loss')})",
        f"- patches: {t.get('settings', {}).get('size')} voxels "
        f"({', '.join(config.model_expected_orientation)}) at {config.resolution_range} mm, "
        f"turned to the spine axis: {t.get('settings', {}).get('rotate')}",
        "",
        "## Held-out naming on ground-truth masks",
        "",
        "Patches cut from each held-out view's true masks, the classifier, then the sequence "
        "solver (`pipeline.naming`, method `model`), per view kind (`labeling_eval`):",
        "",
        "```json",
        json.dumps(t.get("heldout"), indent=2),
        "```",
        "",
    ]
    if t.get("end_to_end"):
        lines += [
            "## Held-out naming end to end (demo semantic + instance models, then naming)",
            "",
            "Measured by `benchmarks/labeling.py` (see `benchmarks/RESULTS.md`):",
            "",
            "```json",
            json.dumps(t["end_to_end"], indent=2),
            "```",
            "",
        ]
    lines += [
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with Python "
        f"{sys.version.split()[0]}, torch {torch.__version__}.",
    ]
    path = folder / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
