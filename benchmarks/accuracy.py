"""End-to-end accuracy of the shipped demo models on held-out phantoms, with the ablation of
the paper's table 2 (the same figures without post-processing), plus the instance phase on the
real masks that the tptbox wheel ships.

    python benchmarks/accuracy.py --subjects 20 --seed 7 [--variants 12] [--naming rule]

Prints per-structure Dice (semantic, global), vertebra instance Dice / RQ / PQ, the share of
vertebrae carrying their true anatomical label (when C2 or the sacrum is in view; named as
`segment` names by default, with the demo labelling model, or by ``--naming rule``), and a
Wilcoxon test with vs without post-processing; with ``--variants K`` also K whole spines with a
T13 and K with an L6 (is the extra vertebra named right?). The last line is the mean vertebra
instance Dice.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def _label_accuracy(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int]:
    """(correctly named, total) reference vertebrae (`metrics.naming.named_right`; a vertebra
    the segmentation missed counts as wrong)."""
    from spineps_dask.metrics.naming import named_right

    right = named_right(pred, ref)
    return sum(bool(r) for r in right.values()), len(right)


def _models(method: str) -> tuple:
    """Semantic and instance models, and `segment`'s keyword arguments that name vertebrae by
    ``method`` (``--naming``: a labelling-model method, or ``rule``)."""
    from spineps_dask.distributed import model_cache
    from spineps_dask.models.folders import demo_model
    from spineps_dask.pipeline.naming import NamingSettings

    naming = (
        {}
        if method == "rule"
        else {
            "labeling_model": model_cache.labeling_model(demo_model("labeling")),
            "naming": NamingSettings(method=method),
        }
    )
    return (
        model_cache.semantic_model(demo_model("semantic")),
        model_cache.instance_model(demo_model("instance")),
        naming,
    )


def phantoms(n: int, seed: int, method: str) -> tuple[pd.DataFrame, list[dict]]:
    from spineps_dask.metrics.tables import evaluate_subject
    from spineps_dask.phantom import make_phantom
    from spineps_dask.phantom.cohort import subject_seed
    from spineps_dask.pipeline.segment import segment

    sem_m, inst_m, naming = _models(method)
    tables, rows = [], []
    for i in range(n):
        ph = make_phantom(subject_seed(seed, i))
        subject = f"sub-{i:03d}"
        t0 = time.perf_counter()
        for post in (True, False):
            res = segment(
                ph.image, sem_m, inst_m, n4=False, postprocess_on=post, subject=subject, **naming
            )
            df = evaluate_subject(
                res.semantic.data,
                res.instance.data,
                ph.semantic.data,
                ph.instance.data,
                spacing=ph.image.spacing,
                subject=subject,
                postprocess=post,
            )
            tables.append(df)
            ref = np.asarray(ph.instance.data)
            ok, total = _label_accuracy(np.asarray(res.instance.data), ref)
            rows.append(
                {
                    "subject": subject,
                    "postprocess": post,
                    "region": ph.spec.region,
                    "anchor": res.anchor,
                    # What the issue asks about: C2 or the sacrum truly in view.
                    "truth_anchor": bool(np.isin([2, 26], ref).any()),
                    "named_ok": ok,
                    "vertebrae": total,
                    "seconds": time.perf_counter() - t0,
                }
            )
    return pd.concat(tables, ignore_index=True), rows


def variant_spines(k: int, seed: int, method: str) -> pd.DataFrame:
    """Whole spines with a T13 and with an L6 (``k`` of each, seeds ``seed``..): is the extra
    vertebra named right, and how many vertebrae carry their true name?"""
    from spineps_dask.labels import VERTEBRA_IDS
    from spineps_dask.phantom import make_phantom
    from spineps_dask.pipeline.segment import segment

    sem_m, inst_m, naming = _models(method)
    rows = []
    for i in range(k):
        for extra in ("T13", "L6"):
            ph = make_phantom(
                seed + i, region="whole", has_t13=extra == "T13", has_l6=extra == "L6"
            )
            res = segment(
                ph.image, sem_m, inst_m, n4=False, subject=f"sub-{extra}{i:02d}", **naming
            )
            pred = np.asarray(res.instance.data)
            ok, total = _label_accuracy(pred, np.asarray(ph.instance.data))
            found = [v for v in ("T13", "L6") if (pred == VERTEBRA_IDS[v]).any()]
            rows.append(
                {
                    "seed": seed + i,
                    "extra": extra,
                    "named": "+".join(found) or "none",
                    "named_ok": ok,
                    "vertebrae": total,
                }
            )
    return pd.DataFrame(rows)


def tptbox_instance_phase() -> pd.DataFrame:
    """Instance phase (`segment --semantic`) on the real masks in the tptbox wheel."""
    from spineps_dask.distributed import model_cache
    from spineps_dask.models.folders import demo_model
    from spineps_dask.training.demo_eval import instance_phase_on_real_masks, real_crop_table

    inst_m = model_cache.instance_model(demo_model("instance"))
    out = []
    for folder in ("sample_mri", "sample_ct"):
        res, sem, vert = instance_phase_on_real_masks(folder, inst_m)
        out.append(real_crop_table(res, sem, vert, folder))
    return pd.concat(out, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7, help="cohort seed (never trained on)")
    parser.add_argument(
        "--variants", type=int, default=0, help="also K whole spines with T13 and K with L6"
    )
    parser.add_argument("--variant-seed", type=int, default=5000)
    parser.add_argument(
        "--naming",
        default="model+anchors",
        choices=("model+anchors", "model", "rule"),
        help="how vertebrae are named (default: as segment does, with the demo labelling model)",
    )
    args = parser.parse_args()

    from spineps_dask.metrics.stats import compare_runs
    from spineps_dask.metrics.tables import summarize

    table, rows = phantoms(args.subjects, args.seed, args.naming)
    runs = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    summary = summarize(table)
    keep = summary["metric"].isin(["DSC", "RQ", "PQ", "ASSD"])
    print(summary[keep].to_string(index=False))
    views = {
        "C2 or sacrum truly in view": runs[runs.truth_anchor],
        "pipeline found an anchor": runs[runs.anchor != "none"],
    }
    for post in (True, False):
        for what, view in views.items():
            part = view[view.postprocess == post]
            share = part.named_ok.sum() / max(1, part.vertebrae.sum())
            print(
                f"postprocess={post}, naming {args.naming}: vertebrae with their true label "
                f"({what}, {len(part)} subjects): {share:.3f}"
            )
    a = table[table.postprocess].drop(columns="postprocess")
    b = table[~table.postprocess].drop(columns="postprocess")
    tests = compare_runs(a, b, levels=("instance",), metrics=["DSC", "PQ", "ASSD"])
    print("Wilcoxon, with (A) vs without (B) post-processing, over subjects:")
    print(tests.to_string(index=False))
    print("tptbox real masks, instance phase only:")
    real = tptbox_instance_phase()
    print(real[real.level == "instance"].to_string(index=False))
    if args.variants:
        spines = variant_spines(args.variants, args.variant_seed, args.naming)
        print(spines.to_string(index=False))
        right = (spines.extra == spines.named).groupby(spines.extra).sum()
        share = spines.named_ok.sum() / spines.vertebrae.sum()
        print(
            f"T13/L6 whole spines: extra vertebra named right T13 {right['T13']}/{args.variants}, "
            f"L6 {right['L6']}/{args.variants}; vertebrae with their true label {share:.3f}"
        )
    vert = summary[
        (summary.level == "instance")
        & (summary.metric == "DSC")
        & (summary.structure.str.lower() == "vertebra")
        & summary.postprocess.astype(bool)
    ]
    print(f"vertebra instance Dice (with post-processing): {vert['mean'].iloc[0]:.3f}")


if __name__ == "__main__":
    main()
