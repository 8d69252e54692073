"""Cohort scale (issue 19): the real runner over synthetic cohorts of 1 000 to 100 000 subjects.

Drives `run_store`, the runner `spineps-dask run` calls (through `run_batch`), on a real
`LocalCluster` of worker processes. Everything on the driver is the real code: the store's
lock, the manifest read and the plan, the bounded window, the outcome rows and the manifest
flushes. The model work is a stand-in: a worker plugin (`InstantTasks`) replaces the task
functions of `spineps_dask.distributed.tasks` (prepare, semantic, instance, assemble, reduce;
the runs name by the rule, so there is no label task) on each worker with ones that return at
once what the real ones return (``--cutouts`` cutout centres, so the graph keeps its shape),
and read or write nothing.

The synthetic store of N subjects is a Zarr root without arrays (the stand-ins read none) and
a manifest of N x 7 rows: every subject ingested, and segmented by an earlier run with other
settings (its ``segment`` row and five phase rows; four before the assemble step of issue 20,
so the RESULTS figures were taken on N x 6). That is a cohort reprocessed with new
models, with the manifest at its largest. Each size runs the same number of subjects
(``--run``, spread over the cohort), so the rates compare what the driver pays per subject
at each cohort size. The runner flushes its rows every ``--flush`` seconds (default 1 s, the
CLI's is 10 s) so each size sees several flushes.

    PYTHONPATH=. python benchmarks/scale.py --sizes 1000 10000 100000 --run 1000

Per size it prints: subjects per second through the runner, the run's start-up (call to the
first task), the driver's time per manifest flush (median and max), and, beside the run, one
flush of 200 rows, a full read, the plan alone, ``open_cohort(...).status()`` and a
compaction of the whole manifest.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from spineps_dask.config import RunConfig
from spineps_dask.distributed.cluster import MODEL_RESOURCE
from spineps_dask.distributed.outcomes import PHASES
from spineps_dask.distributed.resume import plan_subjects, run_store
from spineps_dask.distributed.runner import RunEvents
from spineps_dask.explore import open_cohort
from spineps_dask.io.manifest import SCHEMA, Manifest, make_row
from spineps_dask.io.store import CohortStore


class InstantTasks(WorkerPlugin):
    """Stand-in model work: the run's task functions return at once on this worker."""

    name = "scale-instant-tasks"

    def __init__(self, cutouts: int) -> None:
        self.cutouts = cutouts

    def setup(self, worker: Any) -> None:
        from spineps_dask.distributed import tasks
        from spineps_dask.distributed.outcomes import (
            Failure,
            StageResult,
            SubjectOutcome,
            gather,
        )

        cutouts = self.cutouts

        def prepare(store, subject, cfg):
            return StageResult(subject, {}, {}).then("prepare", 0.0)

        def semantic(store, subject, prev, cfg):
            return prev.then("semantic", 0.0, centres=np.zeros((cutouts, 3)))

        def instance(store, subject, sem, indices, cfg):
            return StageResult(subject, {}, {}).then("instance", 0.0)

        def assemble(store, subject, cfg, sem, *parts):
            prev = gather(sem, parts)
            return prev if isinstance(prev, Failure) else prev.then("assemble", 0.0)

        def reduce(store, subject, cfg, prev):
            if isinstance(prev, Failure):
                return prev.outcome()
            done = prev.then("reduce", 0.0)
            return SubjectOutcome(
                subject, "done", n_cutouts=prev.n_cutouts, timings=done.timings,
                workers=done.workers,
            )  # fmt: skip

        tasks.prepare, tasks.semantic = prepare, semantic
        tasks.instance, tasks.assemble, tasks.reduce = instance, assemble, reduce


def synthetic_store(root: Path, n: int) -> CohortStore:
    """A store of ``n`` subjects: no arrays, a manifest of ``n`` x 7 rows (see the top)."""
    url = root / f"cohort{n}.zarr"
    shutil.rmtree(url, ignore_errors=True)
    store = CohortStore(url)
    subjects = [f"sub-{i:06d}" for i in range(n)]
    phases = ["ingest", "segment", *(p for p in PHASES if p != "label")]  # rule naming
    rows = len(subjects) * len(phases)
    now = make_row("sub-0", "ok")["updated"]
    cols: dict[str, Any] = {
        "subject": np.repeat(subjects, len(phases)),
        "phase": np.tile(phases, n),
        "status": ["ok"] * rows,
        "source": [None] * rows,
        "sha256": ["ab" * 32 if p == "ingest" else None for p in np.tile(phases, n)],
        "shape": [[16, 160, 320] if p == "ingest" else None for p in np.tile(phases, n)],
        "spacing": [[3.3, 0.6, 0.6] if p == "ingest" else None for p in np.tile(phases, n)],
        "orientation": ["PIR"] * rows,
        "dtype": ["int16"] * rows,
        "error": [None] * rows,
        "step": [None] * rows,
        "seconds": np.full(rows, 1.5),
        "timings": ['{"prepare": 1.0}'] * rows,
        "updated": [now] * rows,
    }
    table = pa.table({f.name: pa.array(cols[f.name], f.type) for f in SCHEMA})
    older = np.where(np.tile(phases, n) == "ingest", None, "an-earlier-fingerprint")
    table = table.append_column("config", pa.array(older, pa.string()))
    table = table.append_column("run_id", pa.array(["r0"] * rows))
    pq.write_table(table, store.manifest_url)
    return store


class _Clock(RunEvents):
    """When the runner started its first task (the end of the run's start-up)."""

    def __init__(self) -> None:
        self.started: float | None = None

    def subjects_total(self, n: int) -> None:
        self.started = self.started or time.perf_counter()


def measure(
    client: Client, store: CohortStore, n: int, run: int, flush: float, offset: int
) -> dict[str, Any]:
    """One run of ``run`` subjects (every ``n // run``-th from ``offset``) of a store of ``n``."""
    cfg = RunConfig(snapshot=False, metrics=False, labeling_model=None)
    sample = [f"sub-{i:06d}" for i in range(offset, n, max(1, n // run))][:run]
    flushes: list[float] = []
    upsert = Manifest.upsert

    def timed(self: Manifest, rows: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return upsert(self, rows)
        finally:
            flushes.append(time.perf_counter() - t0)

    clock = _Clock()
    Manifest.upsert = timed  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        summary = run_store(
            client, store, cfg, subjects=sample, events=clock, max_in_flight=64,
            flush_seconds=flush,
        )  # fmt: skip
        t1 = time.perf_counter()
    finally:
        Manifest.upsert = upsert  # type: ignore[method-assign]
    assert len(summary.done) == len(sample), summary
    started = clock.started or t0
    return {
        "subjects": n,
        "run": len(sample),
        "rate": len(summary.done) / (t1 - started),
        "startup": started - t0,
        "flushes": flushes,
    }


def beside(store: CohortStore) -> dict[str, float]:
    """The manifest's costs outside a run: one flush of 200 rows, a read, the plan,
    ``status()`` and a compaction of everything."""
    cfg = RunConfig(snapshot=False, metrics=False, labeling_model=None)
    manifest = store.manifest
    out = {}
    extra = [make_row(f"sub-{i:06d}", "ok", phase="semantic") for i in range(200)]
    out["flush200"] = _seconds(lambda: manifest.upsert(extra))
    out["read"] = _seconds(manifest.read)
    out["plan"] = _seconds(lambda: plan_subjects(manifest, cfg))
    out["status"] = _seconds(lambda: open_cohort(store.url).status())
    out["compact"] = _seconds(manifest.compact)
    return out


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_cohort(root: Path, n: int, shape: tuple[int, int, int]) -> Path:
    """``n`` small sagittal-ish scans as a BIDS folder (seeded noise, 0.6 x 0.6 x 3.3 mm)."""
    import nibabel as nib

    bids = root / f"bids{n}"
    affine = np.diag([0.6, 0.6, 3.3, 1.0])
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = bids / f"sub-{i:06d}" / "anat"
        folder.mkdir(parents=True)
        data = rng.integers(0, 1000, size=shape, dtype=np.int16)
        nib.save(nib.Nifti1Image(data, affine), str(folder / f"sub-{i:06d}_T2w.nii.gz"))
    return bids


def ingest_rates(root: Path, n: int, workers: list[int]) -> dict[int, float]:
    """Scans per second through `ingest_on_cluster` on ``w`` worker processes, per ``w``."""
    from spineps_dask.distributed.ingest import ingest_on_cluster

    bids = write_cohort(root, n, (64, 64, 16))
    rates = {}
    for w in workers:
        cluster = LocalCluster(
            n_workers=w, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        )  # fmt: skip
        with cluster, Client(cluster) as client:
            client.submit(int, 0).result()  # workers up before the clock starts
            store = CohortStore(root / f"ingest{w}.zarr")
            t0 = time.perf_counter()
            summary = ingest_on_cluster(client, bids, store)
            rates[w] = len(summary.ingested) / (time.perf_counter() - t0)
        assert len(summary.ingested) == n, summary.failed
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--run", type=int, default=500, help="subjects run per size and pass")
    parser.add_argument("--passes", type=int, default=2, help="passes, alternating the order")
    parser.add_argument("--cutouts", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flush", type=float, default=1.0, help="seconds between flushes")
    parser.add_argument("--ingest", type=int, default=0, help="scans for the ingest rates")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="scale-"))
    if args.ingest:
        rates = ingest_rates(root, args.ingest, [1, 2])
        shutil.rmtree(root, ignore_errors=True)
        for w, rate in rates.items():
            print(f"ingest of {args.ingest} scans (64x64x16 int16), {w} worker(s): {rate:.1f}/s")
        return
    stores = {n: synthetic_store(root, n) for n in args.sizes}
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        resources={MODEL_RESOURCE: 1},
        dashboard_address="127.0.0.1:0",
        host="127.0.0.1",
    )
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.sizes}
    try:
        with Client(cluster) as client:
            client.register_plugin(InstantTasks(args.cutouts))
            measure(client, synthetic_store(root, 100), 100, 50, 1.0, 0)  # warm-up
            for p in range(args.passes):  # the order alternates: drift hits every size alike
                for n in args.sizes if p % 2 == 0 else args.sizes[::-1]:
                    runs[n].append(measure(client, stores[n], n, args.run, args.flush, p))
        costs = {n: beside(stores[n]) for n in args.sizes}
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    _report(args.sizes, runs, costs)


def _report(
    sizes: list[int], runs: dict[int, list[dict[str, Any]]], costs: dict[int, dict[str, float]]
) -> None:
    print(
        "| subjects | run | subjects/s (each pass) | start-up s | flushes | flush median ms "
        "| flush max ms | 200-row flush ms | read s | plan s | status() s | compact s |"
    )
    print("|" + "---|" * 12)
    rates = {}
    for n in sizes:
        rs, c = runs[n], costs[n]
        flushes = [f for r in rs for f in r["flushes"]]
        rates[n] = statistics.mean(r["rate"] for r in rs)
        each = ", ".join(f"{r['rate']:.1f}" for r in rs)
        print(
            f"| {n} | {sum(r['run'] for r in rs)} | {rates[n]:.1f} ({each}) "
            f"| {max(r['startup'] for r in rs):.2f} | {len(flushes)} "
            f"| {1000 * statistics.median(flushes):.1f} | {1000 * max(flushes):.1f} "
            f"| {1000 * c['flush200']:.1f} | {c['read']:.2f} | {c['plan']:.2f} "
            f"| {c['status']:.2f} | {c['compact']:.2f} |"
        )
    for n in sizes[1:]:
        print(f"rate at {n}: {100 * rates[n] / rates[sizes[0]]:.0f} % of the rate at {sizes[0]}")


if __name__ == "__main__":
    main()
