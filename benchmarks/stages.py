"""Cost per stage of one subject, and end-to-end time over pure model forward time.

One process runs the sequential path (`segment_file`'s composition: read NIfTI, `segment`,
snapshot + NIfTI write) plus the biomarker table and the metrics against the phantoms'
ground truth. Nothing is re-implemented: the pipeline's own functions are wrapped with timers
for the duration of the run (merge, post-process, N4), and the two networks get forward hooks,
so "forward" is the time inside ``network(x)`` only (no sliding-window bookkeeping, no
resampling, no argmax).

    python benchmarks/stages.py --subjects 4 --threads 1 [--recipes reference native]

With two recipes (issue 22: what the reference recipe's cubic spline and model-resolution
masks cost the CPU lane), both run on every subject in turn, in one process, and the table
gets a column per recipe and their ratio.

The last line is the summary figure: scheduling-free I/O share of end-to-end time, in percent.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Functions timed by wrapping (module, attribute) -> stage name.
WRAPPED = {
    ("spineps_dask.pipeline.segment", "merge_predictions"): "merge",
    ("spineps_dask.pipeline.segment", "postprocess_instances"): "post-process",
    ("spineps_dask.pipeline.preprocess", "n4_correct"): "of which N4",
    ("spineps_dask.models.semantic", "rescale"): "of which spline to model grid",
    ("spineps_dask.pipeline.segment", "resample_to"): "of which back to scan grid",
}


class Accumulator(defaultdict):
    """Seconds per stage, written into whichever recipe's table is `current`."""

    def __init__(self) -> None:
        super().__init__(float)
        self.tables: dict[str, defaultdict[str, float]] = {}
        self.current = self

    def use(self, recipe: str) -> None:
        self.current = self.tables.setdefault(recipe, defaultdict(float))

    def __missing__(self, key: str) -> float:
        return 0.0

    def __getitem__(self, key: str) -> float:
        return self.current.get(key, 0.0) if self.current is not self else super().get(key, 0.0)

    def __setitem__(self, key: str, value: float) -> None:
        if self.current is self:
            super().__setitem__(key, value)
        else:
            self.current[key] = value


@contextlib.contextmanager
def timed_functions(acc: dict[str, float]) -> Iterator[None]:
    """Wrap the ``WRAPPED`` functions so each call adds its seconds to ``acc``."""
    saved = []
    for (module_name, attr), stage in WRAPPED.items():
        module = importlib.import_module(module_name)
        fn = getattr(module, attr)
        saved.append((module, attr, fn))
        setattr(module, attr, _timer(fn, stage, acc))
    try:
        yield
    finally:
        for module, attr, fn in saved:
            setattr(module, attr, fn)


def _timer(fn: Callable[..., Any], stage: str, acc: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[stage] += time.perf_counter() - t0

    return wrapper


def forward_hooks(network: Any, stage: str, acc: dict[str, float]) -> None:
    """Add the seconds of every top-level ``network(x)`` call to ``acc[stage]``."""
    start: list[float] = []
    network.register_forward_pre_hook(lambda *_: start.append(time.perf_counter()))

    def done(*_: Any) -> None:
        acc[stage] += time.perf_counter() - start.pop()

    network.register_forward_hook(done)


def run(
    bids: Path, out: Path, threads: int, n4: bool, recipes: tuple[str, ...] = ("reference",)
) -> tuple[int, dict[str, dict[str, float]]]:
    """Process every scan under ``bids`` with each recipe in turn; return (scans, summed
    seconds per stage per recipe)."""
    from spineps_dask.config import RunConfig
    from spineps_dask.distributed import model_cache

    cfg = RunConfig(n4=n4)
    model_cache.set_threads(threads)
    models = (
        model_cache.semantic_model(cfg.semantic_model, threads=threads),
        model_cache.instance_model(cfg.instance_model),
    )
    acc = Accumulator()
    forward_hooks(models[0].predictor.network, "of which forward (semantic)", acc)
    forward_hooks(models[1].network, "of which forward (instance)", acc)
    scans = sorted(bids.glob("sub-*/anat/*_T2w.nii.gz"))
    with timed_functions(acc):
        for scan in scans:
            for recipe in recipes:
                acc.use(recipe)
                t0 = time.perf_counter()
                one_subject(scan, bids, out / recipe, models, n4, acc, recipe=recipe)
                acc["end to end"] += time.perf_counter() - t0
    return len(scans), {r: dict(t) for r, t in acc.tables.items()}


def one_subject(
    scan: Path,
    bids: Path,
    out: Path,
    models: tuple[Any, Any],
    n4: bool,
    acc: dict[str, float],
    *,
    recipe: str = "reference",
) -> None:
    """Read, segment, write, biomarkers, metrics for one scan; seconds into ``acc``."""
    from spineps_dask.biomarkers.levels import level_biomarkers
    from spineps_dask.io.bids import parse_scan_name
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.io.outputs import output_paths, write_subject_outputs
    from spineps_dask.metrics.tables import evaluate_subject
    from spineps_dask.phantom.cohort import GROUNDTRUTH
    from spineps_dask.pipeline.segment import segment
    from spineps_dask.viz.snapshot import render_snapshot

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        acc[name] += time.perf_counter() - t0
        return value

    name = parse_scan_name(scan)
    image = stage("read", lambda: load_volume(scan))
    result = segment(image, *models, n4=n4, subject=name.subject_key, recipe=recipe)
    for k, v in result.timings.items():
        acc[k] += v
    sem, inst = result.semantic, result.instance

    def write() -> None:
        png = render_snapshot(image, sem, inst, title=name.subject_key)
        write_subject_outputs(
            out, name, semantic=sem, instance=inst, centroids=result.centroids, snapshot_png=png
        )

    stage("write", write)
    stage("biomarkers", lambda: level_biomarkers(sem, inst, subject=name.subject_key))
    truth = output_paths(bids / GROUNDTRUTH / scan.parent.relative_to(bids), name)
    stage(
        "metrics",
        lambda: evaluate_subject(
            np.asarray(sem.data),
            np.asarray(inst.data),
            np.asarray(load_volume(truth["semantic"]).data),
            np.asarray(load_volume(truth["instance"]).data),
            spacing=sem.spacing,
            subject=name.subject_key,
        ),
    )


#: Printed order: (label, key in the accumulator); "cutouts" = instance grid + centre search.
ROWS = (
    ("read NIfTI", "read"),
    ("preprocess (crop, normalise, N4)", "prepare"),
    ("  of which N4", "of which N4"),
    ("semantic (nnU-Net + cleaning)", "semantic"),
    ("  of which spline to model grid", "of which spline to model grid"),
    ("  of which forward", "of which forward (semantic)"),
    ("cutouts (instance grid, centres)", "cutouts"),
    ("instance", "instance"),
    ("  of which forward", "of which forward (instance)"),
    ("reduce (merge, post-process, undo)", "reduce"),
    ("  of which merge", "merge"),
    ("  of which post-process", "post-process"),
    ("  of which back to scan grid", "of which back to scan grid"),
    ("write (NIfTI, centroids, PNG)", "write"),
    ("biomarkers", "biomarkers"),
    ("metrics vs ground truth", "metrics"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--region", default="lumbar")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = a worker)")
    parser.add_argument("--n4", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--recipes", nargs="+", default=["reference"], choices=["reference", "native"]
    )
    args = parser.parse_args()

    from spineps_dask.phantom.cohort import write_bids_cohort

    work = args.work or Path(tempfile.mkdtemp(prefix="spineps-stages-"))
    bids = work / "bids"
    if not bids.exists():
        write_bids_cohort(bids, subjects=args.subjects, seed=args.seed, region=args.region)
    recipes = tuple(args.recipes)
    n, tables = run(bids, work / "out", args.threads, args.n4, recipes)
    for acc in tables.values():
        acc["cutouts"] = acc.pop("instance_input", 0.0) + acc.get("cutouts", 0.0)
    print(f"{n} {args.region} phantoms, torch threads {args.threads}, N4 {args.n4}")
    head = "".join(f"{r + ' s/subj':>18}" for r in recipes)
    ratio = f"{recipes[0] + '/' + recipes[1]:>20}" if len(recipes) == 2 else f"{'% of total':>12}"
    print(f"{'stage':<38}{head}{ratio}")
    for label, key in (*ROWS, ("end to end", "end to end")):
        vals = [tables[r].get(key, 0.0) / n for r in recipes]
        cells = "".join(f"{v:>18.2f}" for v in vals)
        if len(recipes) == 2:
            extra = f"{vals[0] / vals[1]:>20.2f}" if vals[1] else f"{'':>20}"
        else:
            extra = f"{100 * vals[0] * n / tables[recipes[0]]['end to end']:>12.1f}"
        print(f"{label:<38}{cells}{extra}")
    for r in recipes:
        acc = tables[r]
        forward = acc["of which forward (semantic)"] + acc["of which forward (instance)"]
        print(f"{r}: end to end / pure model forward: {acc['end to end'] / forward:.2f}")
    acc = tables[recipes[0]]
    io = acc["read"] + acc["write"]
    print(f"file I/O share of end to end (%): {100 * io / acc['end to end']:.1f}")


if __name__ == "__main__":
    main()
