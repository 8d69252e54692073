"""Throughput: a sequential SPINEPS-style loop vs `spineps-dask run` on the same cores.

Both process the same phantom cohort with the same shipped demo models and produce the same
outputs per subject (semantic and instance masks, centroids, snapshot PNG, per-level
biomarker table), measured side by side in one invocation (this machine is shared and noisy).

(a) ``sequential``: one fresh process, torch on every core, models loaded once, then per scan:
read NIfTI, segment, write NIfTI masks + centroids JSON + PNG + biomarkers Parquet, one scan
after another, as the reference does.
(b) each ``--layouts`` entry: a LocalCluster with that layout on the same cores (start-up and
model loading timed apart), ``ingest`` of the BIDS folder into a Zarr store, then `run_store`.

Layout syntax ``WxT[mM][cC]``: W worker processes x T threads, M model slots per worker
(default 1; torch threads per worker = T // M), C cutouts per instance task (default: the
RunConfig's). ``2x1`` = two single-thread workers, ``1x2`` = one worker whose model task uses
both cores while a second thread runs prepare/reduce, ``1x2m2`` = two model tasks side by
side in one process (one torch thread each, one copy of the models).

    python benchmarks/throughput.py --subjects 16 --layouts 2x1 1x2 1x2m2 2x1c1

The ``load`` column is the 1-minute load average before > after each path: above the core
count, something else shared the machine. The last line is the summary figure: the best
end-to-end cluster/sequential throughput ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Layout:
    """A LocalCluster shape a user can pick (``spineps-dask run --workers --threads``)."""

    workers: int
    threads: int
    slots: int = 1
    cutouts_per_task: int | None = None

    @classmethod
    def parse(cls, text: str) -> Layout:
        m = re.fullmatch(r"(\d+)x(\d+)(?:m(\d+))?(?:c(\d+))?", text)
        if m is None:
            raise argparse.ArgumentTypeError(f"layout {text!r}: use WxT[mM][cC], e.g. 2x1, 1x2m2")
        w, t, s, c = m.groups()
        return cls(int(w), int(t), int(s or 1), int(c) if c else None)

    @property
    def torch_threads(self) -> int:
        return max(1, self.threads // self.slots)

    @property
    def label(self) -> str:
        text = f"{self.workers}x{self.threads}"
        text += f"m{self.slots}" if self.slots != 1 else ""
        return text + (f"c{self.cutouts_per_task}" if self.cutouts_per_task else "")


@dataclass
class Measured:
    """One path's timings: ``setup`` (start, model load, ingest) and ``process`` seconds."""

    label: str
    subjects: int
    setup: dict[str, float]
    process: float
    stages: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: list[float] = field(default_factory=list)
    identical: int | None = None
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before / after

    @property
    def total(self) -> float:
        return self.process + sum(self.setup.values())


def _peak_rss_mb() -> float:
    """Peak resident memory of the calling process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sequential_child(bids: Path, out: Path, cfg: Any, threads: int) -> Measured:
    """Runs in a fresh process: clean peak memory, its own torch threads."""
    from spineps_dask.biomarkers.levels import level_biomarkers
    from spineps_dask.cli.segment import segment_file
    from spineps_dask.distributed import model_cache

    model_cache.set_threads(threads)
    t0 = time.perf_counter()
    sem = model_cache.semantic_model(cfg.semantic_model, threads=threads)
    inst = model_cache.instance_model(cfg.instance_model)
    t_load = time.perf_counter() - t0
    stages: dict[str, float] = {}
    scans = sorted(bids.glob("sub-*/anat/*_T2w.nii.gz"))
    t1 = time.perf_counter()
    for scan in scans:
        result, _ = segment_file(scan, out, sem, inst, n4=cfg.n4, snapshot=cfg.snapshot)
        t_bio = time.perf_counter()
        subject = scan.parent.parent.name
        table = level_biomarkers(result.semantic, result.instance, subject=subject)
        table.to_parquet(out / f"{subject}_biomarkers.parquet", index=False)
        for k, v in {**result.timings, "biomarkers": time.perf_counter() - t_bio}.items():
            stages[k] = stages.get(k, 0.0) + v
    seconds = time.perf_counter() - t1
    stages["read+write"] = seconds - sum(stages.values())
    return Measured(
        f"sequential ({threads} torch threads)",
        len(scans),
        {"model load": t_load},
        seconds,
        stages,
        [_peak_rss_mb()],
    )


def sequential(bids: Path, out: Path, cfg: Any, threads: int) -> Measured:
    """The reference-style loop, in one fresh process."""
    ctx = multiprocessing.get_context("spawn")
    before = os.getloadavg()[0]
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        m = pool.submit(_sequential_child, bids, out, cfg, threads).result()
    m.load = (before, os.getloadavg()[0])
    return m


def _worker_peak_rss_mb() -> float:
    return _peak_rss_mb()


def clustered(bids: Path, store_path: Path, cfg: Any, layout: Layout) -> Measured:
    """`run_store` on a LocalCluster of ``layout``; cluster start and ingest timed apart."""
    from distributed import Client, LocalCluster

    from spineps_dask.distributed.cluster import MODEL_RESOURCE, worker_environment
    from spineps_dask.distributed.model_cache import WorkerSetup
    from spineps_dask.distributed.resume import run_store
    from spineps_dask.io.cohort import ingest
    from spineps_dask.io.store import CohortStore

    if layout.cutouts_per_task:
        cfg = replace(cfg, cutouts_per_task=layout.cutouts_per_task)
    shutil.rmtree(store_path, ignore_errors=True)
    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with (
        worker_environment(),
        LocalCluster(
            n_workers=layout.workers,
            threads_per_worker=layout.threads,
            processes=True,
            resources={MODEL_RESOURCE: layout.slots},
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        t_start = time.perf_counter() - t0
        t1 = time.perf_counter()
        client.register_plugin(
            WorkerSetup(
                threads=layout.torch_threads,
                semantic=str(cfg.semantic_model),
                instance=str(cfg.instance_model),
            )
        )
        t_load = time.perf_counter() - t1
        t2 = time.perf_counter()
        ingest(bids, str(store_path))
        t_ingest = time.perf_counter() - t2
        summary = run_store(client, CohortStore(str(store_path)), cfg)
        peaks = sorted(client.run(_worker_peak_rss_mb).values())
    if summary.failed:
        raise RuntimeError(f"{layout.label}: failed subjects {summary.failed}")
    stages = summary.phase_seconds()
    stages.pop("wall", None)
    return Measured(
        f"dask {layout.label}",
        len(summary.done),
        {"cluster start": t_start, "model load": t_load, "ingest": t_ingest},
        summary.wall_seconds,
        stages,
        peaks,
        load=(before, os.getloadavg()[0]),
    )


def identical_subjects(bids: Path, seq_out: Path, store_path: Path) -> int:
    """Subjects whose cluster masks equal the sequential loop's voxel for voxel.

    Not guaranteed across thread counts (a float sum in another order can flip an argmax).
    """
    import numpy as np

    from spineps_dask.io.bids import parse_scan_name
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.io.outputs import output_paths
    from spineps_dask.io.store import CohortStore

    store = CohortStore(str(store_path), mode="r")
    same = 0
    for scan in sorted(bids.glob("sub-*/anat/*_T2w.nii.gz")):
        name = parse_scan_name(scan)
        paths = output_paths(seq_out, name)
        same += all(
            np.array_equal(
                load_volume(paths[kind]).data, store.read_volume(name.subject_key, kind).data
            )
            for kind in ("semantic", "instance")
        )
    return same


def busy_share(m: Measured, layout: Layout) -> tuple[float, float]:
    """(compute, store I/O) task seconds as shares of the run's thread-seconds.

    Exact for one-thread slots (``2x1``); with more torch threads than slots it undercounts
    compute, so the rest (idle + scheduling) reads high.
    """
    capacity = m.process * layout.workers * layout.threads
    io = m.stages.get("store_io", 0.0)
    compute = sum(v for k, v in m.stages.items() if k != "store_io") - io
    return compute / capacity, io / capacity


def report(seq: Measured, runs: list[tuple[Layout, Measured]]) -> float:
    """Print the tables; return the best end-to-end ratio."""
    n = seq.subjects
    head = (
        f"{'path':<30}{'setup s':>9}{'process s':>11}{'total s':>9}"
        f"{'subj/h':>8}{'subj/h proc':>13}{'ratio':>7}{'ratio proc':>12}{'peak MB':>14}"
        f"{'load':>11}"
    )
    print(head)

    def row(m: Measured) -> float:
        ratio = (seq.total / m.total) * (m.subjects / n)
        ratio_proc = (seq.process / m.process) * (m.subjects / n)
        peaks = "/".join(f"{p:.0f}" for p in m.peak_rss_mb)
        print(
            f"{m.label:<30}{sum(m.setup.values()):>9.1f}{m.process:>11.1f}{m.total:>9.1f}"
            f"{3600 * m.subjects / m.total:>8.0f}{3600 * m.subjects / m.process:>13.0f}"
            f"{ratio:>7.2f}{ratio_proc:>12.2f}{peaks:>14}"
            f"{m.load[0]:>6.1f}>{m.load[1]:<4.1f}"
        )
        return ratio

    row(seq)
    ratios = [row(m) for _, m in runs]
    print()
    for m in [seq] + [m for _, m in runs]:
        setup = ", ".join(f"{k} {v:.1f}" for k, v in m.setup.items())
        stages = ", ".join(f"{k} {v:.1f}" for k, v in m.stages.items())
        print(f"{m.label}: setup {setup}; stage seconds (summed): {stages}")
    for layout, m in runs:
        compute, io = busy_share(m, layout)
        print(
            f"{m.label}: of {m.process:.1f} s x {layout.workers * layout.threads} threads, "
            f"compute {100 * compute:.0f} %, store I/O {100 * io:.1f} %, "
            f"idle + scheduling {100 * (1 - compute - io):.0f} %; "
            f"masks identical to sequential: {m.identical}/{seq.subjects} subjects"
        )
    return max(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--region", default="lumbar")
    parser.add_argument(
        "--layouts", nargs="+", type=Layout.parse, default=[Layout(2, 1)], help="WxT[mM][cC]"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="sequential")
    parser.add_argument("--n4", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()

    from spineps_dask.config import RunConfig
    from spineps_dask.phantom.cohort import write_bids_cohort

    work = args.work or Path(tempfile.mkdtemp(prefix="spineps-bench-"))
    bids = work / "bids"
    if not bids.exists():
        write_bids_cohort(bids, subjects=args.subjects, seed=args.seed, region=args.region)
    n = len(list(bids.glob("sub-*/anat/*_T2w.nii.gz")))
    cfg = RunConfig(n4=args.n4)
    shutil.rmtree(work / "seq", ignore_errors=True)

    seq = sequential(bids, work / "seq", cfg, args.threads)
    runs = []
    for layout in args.layouts:
        m = clustered(bids, work / "store.zarr", cfg, layout)
        m.identical = identical_subjects(bids, work / "seq", work / "store.zarr")
        runs.append((layout, m))
    print(
        f"cohort: {n} {args.region} phantoms, seed {args.seed}, N4 {'on' if args.n4 else 'off'}, "
        f"cores {os.cpu_count()}, cutouts per task {cfg.cutouts_per_task} unless cC"
    )
    best = report(seq, runs)
    print(f"best throughput ratio dask/sequential, end to end: {best:.2f}")


if __name__ == "__main__":
    main()
