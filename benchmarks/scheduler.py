"""Scheduler throughput for the runner's graph shape, with trivial tasks.

Per subject: prepare -> semantic -> k instance tasks -> reduce, submitted by the same bounded
window loop as a real run (`run_cohort`), but every task returns at once. The figure says how
many subjects per second one scheduler can drive, i.e. the ceiling before model time counts,
to project a 1 000-worker cluster on paper.

    python benchmarks/scheduler.py --subjects 400 --cutouts 6

The last line is the sustained tasks per second.
"""

from __future__ import annotations

import argparse
import time

from distributed import Client, LocalCluster, as_completed


def _noop(*_args, **_kwargs):
    return 0


def _centres(_prep, k: int):
    return list(range(k))


def drive(client: Client, subjects: int, cutouts: int, batch: int, window: int) -> int:
    """Same submission pattern as `distributed.runner.run_cohort`; returns tasks run."""
    pending, ac, n_tasks = list(range(subjects)), as_completed(), 0
    phase: dict[str, str] = {}

    def start() -> None:
        nonlocal n_tasks
        while pending and len(phase) < window:
            s = pending.pop()
            prep = client.submit(_noop, s, key=f"prepare-{s}")
            sem = client.submit(
                _centres, prep, cutouts, key=f"semantic-{s}", resources={"MODEL": 1}
            )
            phase[sem.key] = "semantic"
            ac.add(sem)
            n_tasks += 2

    start()
    for fut in ac:
        kind = phase.pop(fut.key)
        if kind == "semantic":
            k = len(fut.result())
            inst = [
                client.submit(_noop, fut, i, key=f"inst-{fut.key}-{i}", resources={"MODEL": 1})
                for i in range(0, k, batch)
            ]
            red = client.submit(_noop, fut, *inst, key=f"reduce-{fut.key}")
            phase[red.key] = "reduce"
            ac.add(red)
            n_tasks += len(inst) + 1
        else:
            start()
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
            dashboard_address=":0",
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
