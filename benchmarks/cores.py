"""What the cores give: one process on all torch threads against one process per core.

The ceiling for any scheduler on this machine. The sequential loop runs one subject at a time
with torch on every core; a cluster of one-thread workers runs one subject per core at once.
However well a scheduler overlaps the work, the cluster cannot beat the loop by more than the
throughput of the one-process-per-core run over that of the one-process run, measured here on
the same phantoms with the same `segment` call (models loaded and warmed first, no file I/O).

    python benchmarks/cores.py --subjects 4

Prints subjects per hour for each way to use the cores; the last line is the ceiling ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import time
from typing import Any


def _child(seeds: list[int], region: str, threads: int, n4: bool, start: Any, results: Any) -> None:
    """Load and warm the models, wait for the others, then time `segment` over ``seeds``."""
    from spineps_dask.distributed import model_cache
    from spineps_dask.models.folders import demo_model
    from spineps_dask.phantom import make_phantom
    from spineps_dask.pipeline.segment import segment

    model_cache.set_threads(threads)
    sem = model_cache.semantic_model(demo_model("semantic"), threads=threads)
    inst = model_cache.instance_model(demo_model("instance"))
    images = [make_phantom(s, region=region).image for s in seeds]
    segment(images[0], sem, inst, n4=n4)  # warm-up: first-call costs are not throughput
    start.wait()
    t0 = time.perf_counter()
    for image in images:
        segment(image, sem, inst, n4=n4)
    results.put(time.perf_counter() - t0)


def measure(
    processes: int, threads: int, seeds: list[int], region: str, n4: bool
) -> tuple[float, float]:
    """(wall seconds, subjects per hour) with ``processes`` running ``seeds`` each, at once."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(seeds, region, threads, n4, start, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    walls: list[float] = []
    while len(walls) < processes:
        try:
            walls.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a benchmark process failed (its traceback is above)") from None
    for p in procs:
        p.join()
    wall = max(walls)
    return wall, 3600 * processes * len(seeds) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4, help="per process")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--region", default="lumbar")
    parser.add_argument("--n4", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    from spineps_dask.phantom.cohort import subject_seed

    cores = os.cpu_count() or 1
    seeds = [subject_seed(args.seed, i) for i in range(args.subjects)]
    ways = [(1, cores), (1, 1), (cores, 1)]
    rate = {}
    print(f"{args.subjects} {args.region} phantoms per process, N4 {args.n4}, {cores} cores")
    print(f"{'processes x torch threads':<28}{'wall s':>9}{'s / subject':>13}{'subjects/h':>12}")
    for processes, threads in ways:
        wall, per_hour = measure(processes, threads, seeds, args.region, args.n4)
        rate[processes, threads] = per_hour
        per_subject = wall / len(seeds)
        print(f"{f'{processes} x {threads}':<28}{wall:>9.1f}{per_subject:>13.2f}{per_hour:>12.0f}")
    print(f"one process per core / one process on {cores} threads (ceiling for a cluster): "
          f"{rate[cores, 1] / rate[1, cores]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
