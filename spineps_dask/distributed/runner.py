"""Drive a cohort through the cluster: one small graph per subject, in a bounded `Window`.

Per subject: ``prepare`` -> ``semantic`` (model slot) -> ``instance`` x ceil(cutouts / batch)
(model slot) -> ``assemble`` -> ``label`` (model slot; only with a labelling model) ->
``reduce``; a finished subject whose references are new gets one ``score`` task instead (its
stored masks against the references, no model). The number of instance tasks is known only
after the semantic phase, so the client adds them when the semantic task finishes (its result
is small: the cutout centres, not arrays). The window keeps at most ``max_in_flight``
subjects in the cluster.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from distributed import Client, Future

from spineps_dask.config import RunConfig
from spineps_dask.distributed import tasks
from spineps_dask.distributed.outcomes import Failure, SubjectOutcome
from spineps_dask.distributed.steps import batch_indices
from spineps_dask.distributed.window import Watched, Window
from spineps_dask.io.store import CohortStore

logger = logging.getLogger(__name__)


class RunEvents:
    """Progress hooks; the CLI draws bars from them, tests can count them. No-ops here."""

    def subjects_total(self, n: int) -> None: ...
    def scores_total(self, n: int) -> None: ...
    def cutouts_planned(self, n: int) -> None: ...
    def cutouts_done(self, n: int) -> None: ...
    def subject_finished(self, outcome: SubjectOutcome) -> None: ...


def _cutouts_done(events: RunEvents, n: int, _future: Future) -> None:
    events.cutouts_done(n)


def run_cohort(
    client: Client,
    store: CohortStore,
    subjects: Iterable[str],
    cfg: RunConfig,
    *,
    max_in_flight: int | None = None,
    retries: int = 2,
    events: RunEvents | None = None,
    on_outcome: Callable[[SubjectOutcome], None] | None = None,
    score: Iterable[str] = (),
) -> list[SubjectOutcome]:
    """Process ``subjects`` (already filtered for resume) and return one outcome each.

    ``score``: finished subjects to score only (their stored masks against references that
    came later); their outcomes have ``task="score"``.

    ``retries`` re-runs a task that raised a transient error (I/O that may pass, see
    `outcomes.is_transient`); every other error in a step (bad scan, bad model, a library's
    error on a scan) comes back as a `Failure` value naming the step and is not retried.
    Worker deaths are Dask's to reschedule (``allowed-failures``).
    ``on_outcome`` is called as each subject ends (the manifest is written from it, so a crash
    loses at most the subjects in flight).
    """
    events = events or RunEvents()
    todo = list(subjects)
    scoring = [s for s in score if s not in set(todo)]
    events.subjects_total(len(todo))
    events.scores_total(len(scoring))
    window = Window(client, size=max_in_flight, retries=retries)
    outcomes: list[SubjectOutcome] = []
    only_score = set(scoring)

    def start(subject: str) -> None:
        if subject in only_score:
            window.watch(
                window.submit(subject, tasks.score, store, subject, cfg, name="score"),
                subject,
                "score",
            )
            return
        prep = window.submit(subject, tasks.prepare, store, subject, cfg, name="prepare")
        sem = window.submit(
            subject,
            tasks.semantic,
            store,
            subject,
            prep,
            cfg,
            name="semantic",
            model=True,
            priority=1,
        )
        window.watch(sem, subject, "semantic")

    def finish(outcome: SubjectOutcome) -> None:
        wall = window.finish(outcome.subject)
        outcome.timings.setdefault("wall", wall)
        outcomes.append(outcome)
        if on_outcome is not None:  # record before anything else can interrupt
            on_outcome(outcome)
        events.subject_finished(outcome)

    def on_result(done: Watched, result: Any) -> None:
        if isinstance(result, Failure):
            outcome = result.outcome()
            if done.step == "score":
                outcome.task = "score"
            else:
                # A task that raised past its retries (the window made it a Failure) dropped
                # nothing: the subject's work arrays go here (again, harmlessly, for a
                # Failure its task returned, which dropped them already).
                tasks.drop_work(store, done.subject)
            finish(outcome)
        elif done.step == "semantic":
            submit_rest(done.subject, done.future, result.n_cutouts)
        else:
            finish(result)  # reduce and score return the subject's outcome

    def submit_rest(subject: str, sem: Future, n_cutouts: int) -> None:
        """The instance tasks of the planned cutouts, then assemble, label and reduce."""
        events.cutouts_planned(n_cutouts)
        inst = []
        for batch in batch_indices(n_cutouts, cfg.cutouts_per_task):
            f = window.submit(
                subject,
                tasks.instance,
                store,
                subject,
                sem,
                batch,
                cfg,
                name=f"instance{batch[0]}",
                model=True,
                priority=2,
            )
            f.add_done_callback(functools.partial(_cutouts_done, events, len(batch)))
            inst.append(f)
        last = window.submit(
            subject, tasks.assemble, store, subject, cfg, sem, *inst, name="assemble", priority=3
        )
        if cfg.labeling_folder is not None:
            last = window.submit(
                subject,
                tasks.label,
                store,
                subject,
                last,
                cfg,
                name="label",
                model=True,
                priority=4,
            )
        red = window.submit(
            subject, tasks.reduce, store, subject, cfg, last, name="reduce", priority=5
        )
        window.watch(red, subject, "reduce")

    window.run([*scoring, *todo], start, on_result)
    return outcomes
