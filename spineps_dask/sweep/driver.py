"""Drive a grid of settings over a cohort on the cluster, one small graph per subject.

Per subject, one ``prepare`` task per distinct prepare key, one ``semantic`` task per distinct
semantic key; when a semantic task ends, its instance tasks, one ``assemble`` per assemble key
that shares it, one ``label`` per setting that names by the labelling model, and one
``reduce`` per setting. So the models run once per subject and key, not once per setting, and
settings that differ only in their naming name the same instance masks. The run's
`Window` keeps at most ``max_in_flight`` subjects in the cluster, and a failure ends only the
settings of that subject that depend on the failed stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future

from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import Failure
from spineps_dask.distributed.steps import batch_indices
from spineps_dask.distributed.window import Watched, Window
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
    on_part: Callable[[tasks.SweepPart], object] | None = None,
) -> GridRun:
    """Run every (subject, setting) not in ``done``; ``on_part`` sees each result as it lands."""
    done = done or set()
    todo = {s: [x for x in settings if (s, x.id) not in done] for s in subjects}
    todo = {s: xs for s, xs in todo.items() if xs}
    grid = _Grid(Window(client, size=max_in_flight, retries=retries), cohort, work, models)
    grid.events, grid.on_part = events or SweepEvents(), on_part
    grid.events.parts_total(sum(len(xs) for xs in todo.values()))
    grid.todo = todo
    grid.window.run(todo, grid.start, grid.on_result)
    return grid.out


class _Grid:
    """The client-side state of one grid run: what each subject in flight still waits for."""

    def __init__(
        self, window: Window, cohort: CohortStore, work: CohortStore, models: RunConfig
    ) -> None:
        self.window, self.cohort, self.work, self.models = window, cohort, work, models
        self.todo: dict[str, list[Setting]] = {}
        self.events = SweepEvents()
        self.on_part: Callable[[tasks.SweepPart], object] | None = None
        self.flights: dict[str, _Flight] = {}
        self.out = GridRun()

    def start(self, subject: str) -> None:
        """One prepare per prepare key, one semantic per semantic key."""
        by_sem: dict[str, list[Setting]] = {}
        for x in self.todo[subject]:
            by_sem.setdefault(x.key("semantic"), []).append(x)
        self.flights[subject] = _Flight(subject, len(self.todo[subject]), by_sem)
        preps: dict[str, Future] = {}
        for key, group in by_sem.items():
            first, pk = group[0], group[0].key("prepare")
            if pk not in preps:
                preps[pk] = self.window.submit(
                    subject,
                    tasks.prepare,
                    self.cohort,
                    self.work,
                    subject,
                    first,
                    self.models,
                    name="prepare",
                    tag=pk,
                )
            sem = self.window.submit(
                subject,
                tasks.semantic,
                self.work,
                subject,
                preps[pk],
                first,
                self.models,
                name="semantic",
                tag=key,
                model=True,
                priority=1,
            )
            self.window.watch(sem, subject, "semantic", key)

    def on_result(self, done: Watched, result: Any) -> None:
        flight = self.flights[done.subject]
        if done.step == "semantic":
            self.on_semantic(flight, done.tag, done.future, result)
        else:
            self.on_reduce(flight, done.tag, result)

    def on_semantic(self, flight: _Flight, key: str, fut: Future, result: Any) -> None:
        """Semantic done: its instance tasks, one assemble per assemble key sharing it, then
        per setting a label task (model naming) and a reduce."""
        group = flight.by_semantic[key]
        if isinstance(result, Failure):
            for x in group:
                self.fail(flight, x, result.step, result.error)
            return
        first, subject = group[0], flight.subject
        pk = first.key("prepare")
        self.record(flight, "prepare", pk, result.timings["prepare"], result.workers["prepare"])
        self.record(flight, "semantic", key, result.timings["semantic"], result.workers["semantic"])
        inst = [
            self.window.submit(
                subject,
                tasks.instance,
                self.work,
                subject,
                fut,
                b,
                first,
                self.models,
                name=f"instance{b[0]}",
                tag=key,
                model=True,
                priority=2,
            )
            for b in batch_indices(result.n_cutouts, self.models.cutouts_per_task)
        ]
        assembled: dict[str, Future] = {}
        for x in group:
            ak = x.key("assemble")
            if ak not in assembled:
                assembled[ak] = self.window.submit(
                    subject,
                    tasks.assemble,
                    self.work,
                    subject,
                    x,
                    self.models,
                    fut,
                    *inst,
                    name="assemble",
                    tag=ak,
                    priority=3,
                )
            last = assembled[ak]
            if x.uses_model:
                last = self.window.submit(
                    subject,
                    tasks.label,
                    self.cohort,
                    self.work,
                    subject,
                    last,
                    x,
                    self.models,
                    name="label",
                    tag=x.key("label"),
                    model=True,
                    priority=4,
                )
            red = self.window.submit(
                subject,
                tasks.reduce,
                self.cohort,
                self.work,
                subject,
                x,
                last,
                name="reduce",
                tag=x.id,
                priority=5,
            )
            self.window.watch(red, subject, "reduce", x)

    def on_reduce(self, flight: _Flight, setting: Setting, result: Any) -> None:
        if isinstance(result, Failure):
            self.fail(flight, setting, result.step, result.error)
            return
        key = setting.key("instance")
        if ("instance", key) not in flight.recorded:  # shared by the settings of this key
            for seconds, worker in result.instance:
                self.record(flight, "instance", key, seconds, worker)
        for stage, seconds, worker in result.shared:  # assemble: shared; label: per setting
            self.record(flight, stage, setting.key(stage), seconds, worker)
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
            self.window.finish(flight.subject)
            self.work.delete_subject(flight.subject)


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
