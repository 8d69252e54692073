"""Drive a grid of settings over a cohort on the cluster, one small graph per subject.

Per subject, one ``prepare`` task per distinct prepare key, one ``semantic`` task per distinct
semantic key; when a semantic task ends, its instance tasks and one ``reduce`` per setting that
shares it. So the models run once per subject and key, not once per setting. As in the runner,
at most ``max_in_flight`` subjects are in the cluster at once, and a failure ends only the
settings of that subject that depend on the failed stage.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future, as_completed

from spineps_dask.config import RunConfig
from spineps_dask.distributed.cluster import MODEL_RESOURCE
from spineps_dask.distributed.tasks import Failure, batch_indices
from spineps_dask.io.store import CohortStore
from spineps_dask.sweep import tasks
from spineps_dask.sweep.settings import Setting

logger = logging.getLogger(__name__)


class SweepEvents:
    """Progress hooks (the CLI draws bars from them). No-ops here."""

    def parts_total(self, n: int) -> None: ...
    def part_finished(self, subject: str, setting: str, failed: bool) -> None: ...
    def stage_ran(self, stage: str) -> None: ...


@dataclass
class GridRun:
    """What a grid run produced: finished parts, stage executions and failures."""

    parts: list[tasks.SweepPart] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Flight:
    subject: str
    pending: int
    by_semantic: dict[str, list[Setting]]
    held: list[Future] = field(default_factory=list)
    recorded: set[tuple[str, str]] = field(default_factory=set)


def run_grid(
    client: Client,
    cohort: CohortStore,
    work: CohortStore,
    subjects: Iterable[str],
    settings: Sequence[Setting],
    models: RunConfig,
    *,
    done: set[tuple[str, str]] | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    events: SweepEvents | None = None,
    on_part: Callable[[tasks.SweepPart], None] | None = None,
) -> GridRun:
    """Run every (subject, setting) not in ``done``; ``on_part`` sees each result as it lands."""
    events = events or SweepEvents()
    done = done or set()
    todo = {s: [x for x in settings if (s, x.id) not in done] for s in subjects}
    queue = deque(s for s, xs in todo.items() if xs)
    events.parts_total(sum(len(todo[s]) for s in queue))
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    window = max_in_flight or 2 * n_workers + 1
    token = uuid.uuid4().hex[:6]
    flights: dict[str, _Flight] = {}
    phase_of: dict[str, tuple[str, str, Any]] = {}
    ac = as_completed()
    out = GridRun()

    def submit(fn: Any, *args: Any, name: str, model: bool = False, prio: int = 0) -> Future:
        return client.submit(
            fn,
            *args,
            key=f"sweep-{name}-{token}",
            resources={MODEL_RESOURCE: 1} if model else None,
            retries=retries,
            priority=prio,
            pure=False,
        )

    def record(flight: _Flight, stage: str, key: str, seconds: float, worker: str) -> None:
        if (stage, key) in flight.recorded and stage != "instance":
            return
        flight.recorded.add((stage, key))
        row = {"subject": flight.subject, "stage": stage, "key": key}
        out.stages.append({**row, "seconds": seconds, "worker": worker})
        events.stage_ran(stage)

    def fail(flight: _Flight, setting: Setting, step: str, error: str) -> None:
        out.failures.append(
            {"subject": flight.subject, "setting": setting.id, "step": step, "error": error}
        )
        events.part_finished(flight.subject, setting.id, True)
        part_done(flight)

    def part_done(flight: _Flight) -> None:
        flight.pending -= 1
        if flight.pending == 0:
            flights.pop(flight.subject)
            for fut in flight.held:
                fut.release()
            work.delete_subject(flight.subject)  # this subject's work arrays, all keys
            start_next()

    def start_next() -> None:
        while queue and len(flights) < window:
            subject = queue.popleft()
            by_sem: dict[str, list[Setting]] = {}
            for x in todo[subject]:
                by_sem.setdefault(x.key("semantic"), []).append(x)
            flight = _Flight(subject, len(todo[subject]), by_sem)
            flights[subject] = flight
            preps: dict[str, Future] = {}
            for key, group in by_sem.items():
                first = group[0]
                pk = first.key("prepare")
                if pk not in preps:
                    preps[pk] = submit(
                        tasks.prepare, cohort, work, subject, first, name=f"prepare-{subject}-{pk}"
                    )
                sem = submit(
                    tasks.semantic,
                    work,
                    subject,
                    preps[pk],
                    first,
                    models,
                    name=f"semantic-{subject}-{key}",
                    model=True,
                    prio=1,
                )
                flight.held += [preps[pk], sem]
                phase_of[sem.key] = (subject, "semantic", key)
                ac.add(sem)

    def on_semantic(flight: _Flight, key: str, fut: Future, result: Any) -> None:
        group = flight.by_semantic[key]
        if isinstance(result, Failure):
            for x in group:
                fail(flight, x, result.step, result.error)
            return
        pk = group[0].key("prepare")
        record(flight, "prepare", pk, result.timings["prepare"], result.workers["prepare"])
        record(flight, "semantic", key, result.timings["semantic"], result.workers["semantic"])
        inst = [
            submit(
                tasks.instance,
                work,
                flight.subject,
                fut,
                b,
                key,
                models,
                name=f"instance{b[0]}-{flight.subject}-{key}",
                model=True,
                prio=2,
            )
            for b in batch_indices(result.n_cutouts, models.cutouts_per_task)
        ]
        flight.held += inst
        for x in group:
            red = submit(
                tasks.reduce,
                cohort,
                work,
                flight.subject,
                x,
                models,
                fut,
                *inst,
                name=f"reduce-{flight.subject}-{x.id}",
                prio=3,
            )
            flight.held.append(red)
            phase_of[red.key] = (flight.subject, "reduce", x)
            ac.add(red)

    def on_reduce(flight: _Flight, setting: Setting, result: Any) -> None:
        if isinstance(result, Failure):
            fail(flight, setting, result.step, result.error)
            return
        key = setting.key("instance")
        if ("instance", key) not in flight.recorded:
            for seconds, worker in result.instance:
                record(flight, "instance", key, seconds, worker)
        record(flight, "reduce", setting.id, result.seconds, result.worker)
        out.parts.append(result)
        if on_part is not None:
            on_part(result)
        events.part_finished(flight.subject, setting.id, False)
        part_done(flight)

    start_next()
    for fut in ac:
        subject, phase, what = phase_of.pop(fut.key)
        flight = flights[subject]
        try:
            result = fut.result()
        except Exception as exc:  # lost beyond retries, or a bug in a task
            logger.exception("sweep: %s failed in %s", subject, phase)
            result = Failure(subject, phase, f"{type(exc).__name__}: {exc}")
        if phase == "semantic":
            on_semantic(flight, what, fut, result)
        else:
            on_reduce(flight, what, result)
    return out


def stage_counts(stages: Sequence[dict[str, Any]], stage: str) -> dict[str, int]:
    """How many times ``stage`` ran per subject (instance: tasks, i.e. cutout batches)."""
    counts: dict[str, int] = {}
    for row in stages:
        if row["stage"] == stage:
            counts[row["subject"]] = counts.get(row["subject"], 0) + 1
    return counts
