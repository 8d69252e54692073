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
    done = done or set()
    todo = {s: [x for x in settings if (s, x.id) not in done] for s in subjects}
    todo = {s: xs for s, xs in todo.items() if xs}
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    grid = _Grid(client, cohort, work, models, todo, events or SweepEvents())
    grid.window = max_in_flight or 2 * n_workers + 1
    grid.on_part, grid.retries = on_part, retries
    grid.events.parts_total(sum(len(xs) for xs in todo.values()))
    return grid.run()


class _Grid:
    """The client-side state of one grid run: subjects in flight and what each future is."""

    def __init__(
        self,
        client: Client,
        cohort: CohortStore,
        work: CohortStore,
        models: RunConfig,
        todo: dict[str, list[Setting]],
        events: SweepEvents,
    ) -> None:
        self.client, self.cohort, self.work, self.models = client, cohort, work, models
        self.todo, self.events = todo, events
        self.queue: deque[str] = deque(todo)
        self.window = 1
        self.retries = 2
        self.on_part: Callable[[tasks.SweepPart], None] | None = None
        self.token = uuid.uuid4().hex[:6]
        self.flights: dict[str, _Flight] = {}
        self.phase_of: dict[str, tuple[str, str, Any]] = {}
        self.ac = as_completed()
        self.out = GridRun()

    def run(self) -> GridRun:
        self.start_next()
        for fut in self.ac:
            subject, phase, what = self.phase_of.pop(fut.key)
            flight = self.flights[subject]
            try:
                result = fut.result()
            except Exception as exc:  # lost beyond retries, or a bug in a task
                logger.exception("sweep: %s failed in %s", subject, phase)
                result = Failure(subject, phase, f"{type(exc).__name__}: {exc}")
            if phase == "semantic":
                self.on_semantic(flight, what, fut, result)
            else:
                self.on_reduce(flight, what, result)
        return self.out

    def submit(self, fn: Any, *args: Any, name: str, model: bool = False, prio: int = 0) -> Future:
        return self.client.submit(
            fn,
            *args,
            key=f"sweep-{name}-{self.token}",
            resources={MODEL_RESOURCE: 1} if model else None,
            retries=self.retries,
            priority=prio,
            pure=False,
        )

    def start_next(self) -> None:
        """Fill the window: one prepare per prepare key, one semantic per semantic key."""
        while self.queue and len(self.flights) < self.window:
            subject = self.queue.popleft()
            by_sem: dict[str, list[Setting]] = {}
            for x in self.todo[subject]:
                by_sem.setdefault(x.key("semantic"), []).append(x)
            flight = _Flight(subject, len(self.todo[subject]), by_sem)
            self.flights[subject] = flight
            preps: dict[str, Future] = {}
            for key, group in by_sem.items():
                first, pk = group[0], group[0].key("prepare")
                if pk not in preps:
                    preps[pk] = self.submit(
                        tasks.prepare,
                        self.cohort,
                        self.work,
                        subject,
                        first,
                        name=f"prepare-{subject}-{pk}",
                    )
                sem = self.submit(
                    tasks.semantic,
                    self.work,
                    subject,
                    preps[pk],
                    first,
                    self.models,
                    name=f"semantic-{subject}-{key}",
                    model=True,
                    prio=1,
                )
                flight.held += [preps[pk], sem]
                self.phase_of[sem.key] = (subject, "semantic", key)
                self.ac.add(sem)

    def on_semantic(self, flight: _Flight, key: str, fut: Future, result: Any) -> None:
        """Semantic done: its instance tasks, then one reduce per setting sharing it."""
        group = flight.by_semantic[key]
        if isinstance(result, Failure):
            for x in group:
                self.fail(flight, x, result.step, result.error)
            return
        pk = group[0].key("prepare")
        self.record(flight, "prepare", pk, result.timings["prepare"], result.workers["prepare"])
        self.record(flight, "semantic", key, result.timings["semantic"], result.workers["semantic"])
        inst = [
            self.submit(
                tasks.instance,
                self.work,
                flight.subject,
                fut,
                b,
                key,
                self.models,
                name=f"instance{b[0]}-{flight.subject}-{key}",
                model=True,
                prio=2,
            )
            for b in batch_indices(result.n_cutouts, self.models.cutouts_per_task)
        ]
        flight.held += inst
        for x in group:
            red = self.submit(
                tasks.reduce,
                self.cohort,
                self.work,
                flight.subject,
                x,
                self.models,
                fut,
                *inst,
                name=f"reduce-{flight.subject}-{x.id}",
                prio=3,
            )
            flight.held.append(red)
            self.phase_of[red.key] = (flight.subject, "reduce", x)
            self.ac.add(red)

    def on_reduce(self, flight: _Flight, setting: Setting, result: Any) -> None:
        if isinstance(result, Failure):
            self.fail(flight, setting, result.step, result.error)
            return
        key = setting.key("instance")
        if ("instance", key) not in flight.recorded:  # shared by the settings of this key
            for seconds, worker in result.instance:
                self.record(flight, "instance", key, seconds, worker)
        self.record(flight, "reduce", setting.id, result.seconds, result.worker)
        self.out.parts.append(result)
        if self.on_part is not None:
            self.on_part(result)
        self.events.part_finished(flight.subject, setting.id, False)
        self.part_done(flight)

    def record(self, flight: _Flight, stage: str, key: str, seconds: float, worker: str) -> None:
        """One stage execution (prepare once per key even when several semantics share it)."""
        if (stage, key) in flight.recorded and stage != "instance":
            return
        flight.recorded.add((stage, key))
        row = {"subject": flight.subject, "stage": stage, "key": key}
        self.out.stages.append({**row, "seconds": seconds, "worker": worker})
        self.events.stage_ran(stage)

    def fail(self, flight: _Flight, setting: Setting, step: str, error: str) -> None:
        row = {"subject": flight.subject, "setting": setting.id, "step": step, "error": error}
        self.out.failures.append(row)
        self.events.part_finished(flight.subject, setting.id, True)
        self.part_done(flight)

    def part_done(self, flight: _Flight) -> None:
        """One pair less; the subject's last one releases its futures and work arrays."""
        flight.pending -= 1
        if flight.pending == 0:
            self.flights.pop(flight.subject)
            for fut in flight.held:
                fut.release()
            self.work.delete_subject(flight.subject)
            self.start_next()


def stage_counts(stages: Sequence[dict[str, Any]], stage: str) -> dict[str, int]:
    """How many times ``stage`` ran per subject (instance: tasks, i.e. cutout batches).

    Sorted by subject: stages finish in any order on a cluster, and the printed dict must not
    change with it.
    """
    counts: dict[str, int] = {}
    for row in stages:
        if row["stage"] == stage:
            counts[row["subject"]] = counts.get(row["subject"], 0) + 1
    return dict(sorted(counts.items()))
