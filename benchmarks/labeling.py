"""Vertebra naming on held-out phantom views: rule against labelling model (issue 20).

    python benchmarks/labeling.py --per-kind 8 --variants 8 --workers 2 [--out labeling.csv]
        [--cache DIR] [--semantic-model DIR --instance-model DIR --labeling-model DIR]

Each view goes once through the demo semantic and instance models (`segment`, rule naming);
the same instance mask is then named three ways: the counting rule, the labelling model
(``model``), and the model with the rule's cues as evidence (``model+anchors``). A reference
vertebra is named right when the predicted label covering most of it is its true id (a
vertebra the segmentation missed counts as wrong; "right of kept" leaves out the slivers cut
by the edge of the view that the instance phase drops by its size threshold). Views: every kind of
`training.labeling_data.VIEW_MIX` (``--per-kind`` each, T13 / L6 at their training rates),
plus ``--variants`` views forced to have a T13 and as many with an L6. Seeds 100700 + 100 x
kind + k and 101700 + k: never trained on (training uses 300000 + k). Prints per method:
vertebrae named right over all views, over views with C2 or the sacrum in view (anchored) and
without (unanchored), subjects with every vertebra right (VERIDAH's measure), T13 / L6 named
right, the share of subjects flagged as low confidence and how many of those were wrong; the
labelling step's seconds per subject; and the naming of the real tptbox crop (ids 5-7 in its
masks, anatomically the thoracolumbar junction: `real_crop_anatomy.py`) from its real masks.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from spineps_dask.metrics.naming import named_right

SEEDS = 100_700
METHODS = ("rule", "model", "model+anchors")


def view_list(per_kind: int, variants: int) -> list[tuple[int, str, dict]]:
    from spineps_dask.training.labeling_data import VIEW_MIX

    views = []
    for j, kind in enumerate(VIEW_MIX):  # seeds by kind, so a longer run extends a shorter
        views += [(SEEDS + 100 * j + i, kind, {}) for i in range(per_kind)]
    t13_kinds = ("whole", "thoracic", "thoracic_only", "lumbar", "mid_lumbar")
    l6_kinds = ("whole", "lumbar", "mid_lumbar")
    for i in range(variants):
        t13 = {"has_t13": True, "has_l6": False}
        views.append((SEEDS + 1000 + 2 * i, t13_kinds[i % 5], t13))
        l6 = {"has_t13": False, "has_l6": True}
        views.append((SEEDS + 1001 + 2 * i, l6_kinds[i % 3], l6))
    return views


#: Model folders (set from the command line; default: the shipped demo models).
MODELS: dict[str, str] = {}


def _segmented(ph, seed: int, kind: str, cache: Path | None):
    """The view through the semantic and instance models (rule naming), cached in ``cache``."""
    from spineps_dask.distributed import model_cache
    from spineps_dask.geometry import Volume
    from spineps_dask.models.folders import demo_model
    from spineps_dask.pipeline.segment import segment

    path = None if cache is None else cache / f"seg-{seed}-{kind}.npz"
    if path is not None and path.is_file():
        z = np.load(path)
        affine = z["affine"]
        return Volume(z["semantic"], affine), Volume(z["instance"], affine), str(z["anchor"])
    sem_m = model_cache.semantic_model(MODELS.get("semantic") or demo_model("semantic"))
    inst_m = model_cache.instance_model(MODELS.get("instance") or demo_model("instance"))
    seg = segment(ph.image, sem_m, inst_m, n4=False, subject=str(seed))
    if path is not None:
        np.savez_compressed(
            path,
            semantic=seg.semantic.data,
            instance=seg.instance.data,
            affine=seg.semantic.affine,
            anchor=seg.anchor,
        )
    return seg.semantic, seg.instance, seg.anchor


def run_view(view: tuple[int, str, dict], cache: Path | None = None) -> list[dict]:
    """One view through the models, named three ways; one row per method."""
    import torch

    from spineps_dask.distributed import model_cache
    from spineps_dask.phantom import make_phantom
    from spineps_dask.pipeline.naming import NamingSettings
    from spineps_dask.pipeline.segment import apply_naming, name_vertebrae
    from spineps_dask.training.labeling_data import view_overrides

    torch.set_num_threads(1)
    seed, kind, extra = view
    ph = make_phantom(seed, **{**view_overrides(kind, seed), **extra})
    semantic, instance, anchor = _segmented(ph, seed, kind, cache)
    if MODELS.get("segment_only"):
        return []
    lab_m = model_cache.labeling_model(MODELS.get("labeling") or demo_model_labeling())
    ref = np.asarray(ph.instance.data)
    ids = set(np.unique(ref).tolist())
    min_voxels = kept_min_voxels(ph.instance.spacing)
    rows = []
    for method in METHODS:
        t0 = time.perf_counter()
        naming = name_vertebrae(
            ph.image, semantic, instance, anchor, lab_m,
            settings=NamingSettings(method=method),
        )  # fmt: skip
        inst, _ = apply_naming(instance, naming)
        seconds = time.perf_counter() - t0
        right = named_right(np.asarray(inst.data), ref)
        kept = named_right(np.asarray(inst.data), ref, min_voxels=min_voxels)
        rows.append(
            {
                "seed": seed,
                "kind": kind,
                "method": method,
                "anchored": bool({2, 26} & ids),
                "vertebrae": len(right),
                "found": sum(r is not None for r in right.values()),
                "right": sum(bool(r) for r in right.values()),
                "all_right": all(right.values()),
                "kept": len(kept),
                "kept_right": sum(bool(r) for r in kept.values()),
                "kept_all_right": all(kept.values()),
                "t13": None if 28 not in right else bool(right[28]),
                "l6": None if 25 not in right else bool(right[25]),
                "confidence": naming.confidence,
                "low_confidence": naming.low_confidence,
                "seconds": seconds,
            }
        )
    return rows


def kept_min_voxels(spacing: tuple[float, ...]) -> float:
    """The instance phase's ``vert_size_threshold`` (the reference's 250 voxels of 2.42 mm³,
    as `InstanceSpace` scales it to the instance model's grid) in voxels of ``spacing``: a
    vertebra with less of it in view is dropped by the pipeline, so it cannot be named."""
    from spineps_dask.models.folders import demo_model, load_model_folder
    from spineps_dask.pipeline.segment import InstanceSpace

    folder = load_model_folder(MODELS.get("instance") or demo_model("instance"), kind="instance")
    space = InstanceSpace.from_config(folder.config)
    grid_mm3 = float(np.prod(space.spacing))
    return space.merge_settings.vert_size_threshold * grid_mm3 / float(np.prod(spacing))


def _models_of(args: argparse.Namespace) -> dict[str, str]:
    out = {k: getattr(args, f"{k}_model") for k in ("semantic", "instance", "labeling")}
    return {
        **{k: v for k, v in out.items() if v},
        **({"segment_only": "1"} if args.segment_only else {}),
    }


def _set_models(models: dict[str, str]) -> None:
    MODELS.clear()
    MODELS.update(models)


def demo_model_labeling() -> Path:
    """The shipped demo labelling model; until one is shipped, a ModelError saying to train
    one (``models train-demo --which labeling``) or to give a labelling folder."""
    from spineps_dask.models.folders import demo_model

    return demo_model("labeling")


def _share(g: pd.DataFrame, of: str = "vertebrae") -> str:
    """Right among ``of`` (``vertebrae``: all; ``kept``: those the instance phase keeps)."""
    right = g.kept_right if of == "kept" else g.right
    return f"{right.sum() / max(g[of].sum(), 1):.1%}" if len(g) else "-"


def _count(ok: pd.Series) -> str:
    return f"{int(ok.sum())}/{len(ok)}"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for method, g in df.groupby("method", sort=False):
        anch, free = g[g.anchored], g[~g.anchored]
        t13, l6 = g.t13.dropna(), g.l6.dropna()
        low = g[g.low_confidence]
        out.append(
            {
                "method": method,
                "vertebrae right": f"{_share(g)} of {g.vertebrae.sum()}",
                # Naming alone (VERIDAH names a given segmentation): right among the vertebrae
                # the segmentation found at all.
                "right of found": (
                    f"{g.right.sum() / max(g.found.sum(), 1):.1%} of {g.found.sum()}"
                    if "found" in g
                    else "-"
                ),
                # Vertebrae the pipeline can keep at all (`kept_min_voxels` of them in view):
                # slivers cut by the edge of the view left out.
                "right of kept": (
                    f"{g.kept_right.sum() / max(g.kept.sum(), 1):.1%} of {g.kept.sum()}"
                    if "kept" in g
                    else "-"
                ),
                "kept: anchored / unanchored": (
                    f"{_share(anch, 'kept')} / {_share(free, 'kept')}" if "kept" in g else "-"
                ),
                "anchored views": _share(anch),
                "unanchored views": _share(free),
                "subjects all right": f"{g.all_right.mean():.1%} of {len(g)}",
                "subjects all kept right": (
                    f"{g.kept_all_right.mean():.1%}" if "kept_all_right" in g else "-"
                ),
                "T13 right": f"{int(t13.sum())}/{len(t13)}",
                "L6 right": f"{int(l6.sum())}/{len(l6)}",
                "flagged low": f"{len(low)} ({int((~low.all_right).sum())} wrong)",
                "wrong not flagged": int((~g.all_right & ~g.low_confidence).sum()),
            }
        )
    return pd.DataFrame(out)


def tptbox_crop() -> dict:
    """The real T2w crop (ids 5-7) named from its real masks by the demo labelling model."""
    from spineps_dask.distributed import model_cache
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.labels import instance_name
    from spineps_dask.pipeline.naming import NamingSettings
    from spineps_dask.pipeline.segment import name_vertebrae
    from spineps_dask.training.demo_eval import real_crop_files

    files = real_crop_files("sample_mri")
    image = load_volume(files["image"])
    sem = load_volume(files["subreg"])
    vert = load_volume(files["vert"])
    sem = sem.with_data(np.asarray(sem.data).astype(np.uint8))
    vert = vert.with_data(np.asarray(vert.data).astype(np.uint16))
    lab_m = model_cache.labeling_model(MODELS.get("labeling") or demo_model_labeling())
    out = {}
    for method in ("model", "model+anchors"):
        t0 = time.perf_counter()
        n = name_vertebrae(image, sem, vert, "none", lab_m, settings=NamingSettings(method=method))
        out[method] = {
            "truth -> named": {
                instance_name(k): instance_name(v) for k, v in sorted(n.mapping.items())
            },
            "confidence": round(float(n.confidence or 0), 3),
            "low_confidence": n.low_confidence,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-kind", type=int, default=8)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="per view x method rows (CSV)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the segmentations here")
    ap.add_argument("--segment-only", action="store_true", help="only fill --cache")
    ap.add_argument("--from-csv", type=Path, default=None, help="summarise an earlier --out")
    for kind in ("semantic", "instance", "labeling"):
        ap.add_argument(f"--{kind}-model", default=None, help="model folder (default: demo)")
    args = ap.parse_args()
    if args.from_csv is not None:
        _set_models(_models_of(args))
        report(pd.read_csv(args.from_csv))
        return
    views = view_list(args.per_kind, args.variants)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, initializer=_set_models, initargs=(_models_of(args),)
    ) as pool:
        parts = pool.map(run_view, views, [args.cache] * len(views))
        rows = [r for part in parts for r in part]
    if args.segment_only:
        print(f"{len(views)} views segmented into {args.cache}, {time.perf_counter() - t0:.0f} s")
        return
    _set_models(_models_of(args))
    df = pd.DataFrame(rows)
    if args.out is not None:
        df.to_csv(args.out, index=False)
    print(f"{len(views)} held-out views, {time.perf_counter() - t0:.0f} s wall")
    report(df)


def report(df: pd.DataFrame) -> None:
    """The summary tables, the labelling step's cost and the tptbox crop's naming."""
    print(summarize(df).to_string(index=False))
    per_kind = df.pivot_table(
        index="kind", columns="method", values=["right", "vertebrae"], aggfunc="sum"
    )
    print((per_kind["right"] / per_kind["vertebrae"]).round(3).to_string())
    # A T13 or L6 is fixed by counting only in a view from C2 to the sacrum ("whole"); in the
    # other views the classifier has to tell it from its neighbours by shape.
    for variant in ("t13", "l6"):
        seen = df[df[variant].notna()].assign(ok=lambda d, v=variant: d[v].astype(bool))
        table = seen.pivot_table(index="kind", columns="method", values="ok", aggfunc=_count)
        print(f"{variant.upper()} named right, by view kind:\n{table.to_string()}")
    lab = df[df.method != "rule"]
    print(f"labelling step: {lab.seconds.mean():.2f} s per subject (mean, CPU, 1 thread)")
    try:
        print("tptbox real crop (mask ids 5-7, real masks):", tptbox_crop())
    except ModuleNotFoundError:
        print("tptbox not installed: real crop skipped")


if __name__ == "__main__":
    main()
