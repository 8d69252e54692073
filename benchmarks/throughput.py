"""Throughput: a sequential SPINEPS-style loop vs `spineps-dask run` on the same cores.

Both process the same phantom cohort with the same shipped demo models, measured side by side
in one run (this machine is shared and noisy). (a) loads the models once, then for each scan:
read NIfTI, segment, write the outputs, one after another, as the reference does. (b) ingests
the cohort into a Zarr store and runs the Dask graph on a LocalCluster using the same cores.

    python benchmarks/throughput.py --subjects 16 --workers 2

The last line is the summary figure: the cluster/sequential throughput ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def sequential(bids: Path, out: Path, cfg) -> tuple[float, dict[str, float]]:
    from spineps_dask.cli.segment import segment_file
    from spineps_dask.distributed import model_cache

    model_cache.set_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    sem = model_cache.semantic_model(cfg.semantic_model)
    inst = model_cache.instance_model(cfg.instance_model)
    stages: dict[str, float] = {}
    for scan in sorted(bids.glob("sub-*/anat/*_T2w.nii.gz")):
        result, _ = segment_file(scan, out, sem, inst, n4=cfg.n4)
        for k, v in result.timings.items():
            stages[k] = stages.get(k, 0.0) + v
    return time.perf_counter() - t0, stages


def clustered(bids: Path, store: Path, cfg, workers: int) -> tuple[float, object]:
    from distributed import Client, LocalCluster

    from spineps_dask.distributed.cluster import MODEL_RESOURCE
    from spineps_dask.distributed.model_cache import WorkerSetup
    from spineps_dask.distributed.runner import run_store
    from spineps_dask.io.cohort import ingest
    from spineps_dask.io.store import CohortStore

    threads = max(1, (os.cpu_count() or 1) // workers)
    t0 = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            resources={MODEL_RESOURCE: 1},
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(WorkerSetup(threads=threads))
        ingest(bids, str(store))
        summary = run_store(client, CohortStore(str(store)), cfg)
    return time.perf_counter() - t0, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--region", default="lumbar")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n4", action="store_true", help="N4 on in both paths")
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()

    from spineps_dask.config import RunConfig
    from spineps_dask.phantom.cohort import write_bids_cohort

    work = args.work or Path(tempfile.mkdtemp(prefix="spineps-bench-"))
    bids = work / "bids"
    if not bids.exists():
        write_bids_cohort(bids, subjects=args.subjects, seed=args.seed, region=args.region)
    cfg = RunConfig(n4=args.n4)
    for d in (work / "seq", work / "store.zarr"):
        shutil.rmtree(d, ignore_errors=True)

    t_seq, stages = sequential(bids, work / "seq", cfg)
    t_par, summary = clustered(bids, work / "store.zarr", cfg, args.workers)
    n = args.subjects
    print(f"cohort: {n} {args.region} phantoms, seed {args.seed}, cores {os.cpu_count()}")
    print(f"{'path':<28}{'seconds':>10}{'subjects/h':>12}")
    print(f"{'sequential (one process)':<28}{t_seq:>10.1f}{3600 * n / t_seq:>12.0f}")
    label = f"dask ({args.workers} workers)"
    print(f"{label:<28}{t_par:>10.1f}{3600 * len(summary.done) / t_par:>12.0f}")
    print("sequential stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(
        "cluster task seconds:     "
        + ", ".join(f"{k} {v:.1f}" for k, v in summary.phase_seconds().items())
    )
    print(f"failed: {len(summary.failed)}")
    print(f"throughput ratio dask/sequential: {t_seq / t_par * len(summary.done) / n:.2f}")


if __name__ == "__main__":
    main()
