"""Scheduler throughput for the runner's graph shape, with trivial tasks.

Per subject: prepare -> semantic -> k instance tasks -> reduce, submitted through the bounded
window of a real run (`distributed.window.Window`), but every task returns at once. The figure
says how many subjects per second one scheduler can drive, i.e. the ceiling before model time
counts, to project a 1 000-worker cluster on paper.

    python benchmarks/scheduler.py --subjects 400 --cutouts 6

The last line is the sustained tasks per second.
"""

from __future__ import annotations

import argparse
import time

from distributed import Client, LocalCluster

from spineps_dask.distributed.window import Watched, Window


def _noop(*_args, **_kwargs):
    return 0


def _centres(_prep, k: int):
    return list(range(k))


def drive(client: Client, subjects: int, cutouts: int, batch: int, window: int) -> int:
    """The runner's `Window` and graph shape with no-op tasks; returns tasks run."""
    w = Window(client, size=window)
    n_tasks = 0

    def start(s: str) -> None:
        nonlocal n_tasks
        prep = w.submit(s, _noop, s, name="prepare")
        sem = w.submit(s, _centres, prep, cutouts, name="semantic", model=True)
        w.watch(sem, s, "semantic")
        n_tasks += 2

    def on_result(done: Watched, result) -> None:
        nonlocal n_tasks
        if done.step == "reduce":
            w.finish(done.subject)
            return
        inst = [
            w.submit(done.subject, _noop, done.future, i, name=f"instance{i}", model=True)
            for i in range(0, len(result), batch)
        ]
        red = w.submit(done.subject, _noop, done.future, *inst, name="reduce")
        w.watch(red, done.subject, "reduce")
        n_tasks += len(inst) + 1

    w.run([f"sub-{i}" for i in range(subjects)], start, on_result)
    return n_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--cutouts", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1, help="cutouts per instance task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            resources={"MODEL": 1},
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        t0 = time.perf_counter()
        n = drive(client, args.subjects, args.cutouts, args.batch, args.window)
        dt = time.perf_counter() - t0
    print(f"{args.subjects} subjects, {n} tasks, {dt:.1f} s on {args.workers} workers")
    print(f"subjects per second: {args.subjects / dt:.1f}")
    print(f"tasks per second: {n / dt:.0f}")


if __name__ == "__main__":
    main()
