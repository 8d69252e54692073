"""A bounded window of subjects in the cluster: the scheduler under `run` and `sweep`.

At most ``size`` subjects have futures in the cluster at once, so a 100 000-subject cohort
never means 100 000 futures (distributed-notes: bound in-flight work). A driver says how to
start a subject (submit its first tasks, `watch` the ones whose results it needs) and what to
do with each watched result (submit more, or `finish` the subject); the window fills free
places from the queue. A task that raised beyond its retries comes back as a `Failure` that
`describe_error` words, so drivers handle one kind of failed result.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future, as_completed

from spineps_dask.distributed.cluster import MODEL_RESOURCE, use_model_slots
from spineps_dask.distributed.outcomes import STEP_ATTR, Failure

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watched:
    """A finished future a driver asked to see: its subject, step and the driver's own tag."""

    subject: str
    step: str
    future: Future
    tag: Any = None


@dataclass
class _Subject:
    started: float
    held: list[Future] = field(default_factory=list)


class Window:
    """Submit tasks for a bounded number of subjects and hand their results back in order.

    Parameters
    ----------
    client
        The cluster to run on.
    size
        Subjects in flight at once; default twice the workers plus one (enough to keep every
        worker busy while results come back).
    retries
        Re-runs of a task whose worker died or that raised an unexpected error.

    Raises
    ------
    ClusterError
        The workers cannot run model tasks as they are (`use_model_slots`).
    """

    def __init__(self, client: Client, *, size: int | None = None, retries: int = 2) -> None:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        self.client = client
        self.size = size or 2 * n_workers + 1
        self.retries = retries
        self.model_slots = use_model_slots(client)
        self._token = uuid.uuid4().hex[:6]
        self._subjects: dict[str, _Subject] = {}
        self._watched: dict[str, Watched] = {}
        self._ac = as_completed()

    def submit(
        self,
        subject: str,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        tag: str = "",
        model: bool = False,
        priority: int = 0,
    ) -> Future:
        """``fn(*args)`` as a task of ``subject``, held until the subject is finished.

        The key starts with ``name`` (`describe_error` reads the step from it); ``tag`` tells
        apart tasks of one subject and step (a sweep's stage keys). ``model``: the task asks
        for a model slot.
        """
        parts = (name, subject, tag, self._token)
        future = self.client.submit(
            fn,
            *args,
            key="-".join(p for p in parts if p),
            resources={MODEL_RESOURCE: 1} if model and self.model_slots else None,
            retries=self.retries,
            priority=priority,
            pure=False,
        )
        self._subjects[subject].held.append(future)
        return future

    def watch(self, future: Future, subject: str, step: str, tag: Any = None) -> None:
        """Hand ``future``'s result to the driver when it finishes."""
        self._watched[str(future.key)] = Watched(subject, step, future, tag)
        self._ac.add(future)

    def finish(self, subject: str) -> float:
        """Release the subject's futures and free its place; returns its seconds in flight."""
        flight = self._subjects.pop(subject)
        for future in flight.held:
            future.release()
        return time.perf_counter() - flight.started

    def run(
        self,
        subjects: Iterable[str],
        start: Callable[[str], None],
        on_result: Callable[[Watched, Any], None],
    ) -> None:
        """Start subjects as places free up; call ``on_result`` for every watched future.

        A future that raised (beyond its retries) is passed as a `Failure` naming the step.
        """
        queue = deque(subjects)

        def fill() -> None:
            while queue and len(self._subjects) < self.size:
                subject = queue.popleft()
                self._subjects[subject] = _Subject(time.perf_counter())
                start(subject)

        fill()
        for future in self._ac:
            watched = self._watched.pop(str(future.key))
            try:
                result = future.result()
            except Exception as exc:  # lost beyond retries, or an unexpected bug in a task
                step, message = describe_error(self.client, exc, self._origin(watched, exc))
                # The failed row and the summary say it: one line at info (-v), the traceback
                # at debug (-vv) (issue 21 item 6).
                logger.info("%s failed in %s: %s", watched.subject, step, message)
                logger.debug("%s failed in %s", watched.subject, step, exc_info=exc)
                result = Failure(watched.subject, step, message)
            on_result(watched, result)
            fill()

    def _origin(self, watched: Watched, exc: BaseException) -> str:
        """The step whose task raised ``exc``: a watched task's error may be a dependency's.

        The step a `Guard` marked on the error, else the first of the subject's tasks (they
        are held in the order submitted, dependencies first) that erred, else the watched one.
        """
        marked = getattr(exc, STEP_ATTR, None)
        if isinstance(marked, str):
            return marked
        flight = self._subjects.get(watched.subject)
        for future in flight.held if flight else ():
            if future.status == "error":
                match = re.match(r"[a-z]+", str(future.key))
                return match.group(0) if match else watched.step
        return watched.step


def describe_error(client: Client, exc: BaseException, phase: str) -> tuple[str, str]:
    """``(step, message)`` for a task that raised ``exc`` beyond its retries.

    A `KilledWorker` (every worker that ran the task died) names the task that killed them
    and says "out of memory" when the nanny restarted those workers for their memory limit
    (its ``worker-restart-memory`` events); otherwise the cause is unknown and the message
    says where to look.
    """
    from distributed import KilledWorker

    if not isinstance(exc, KilledWorker):
        return phase, f"{type(exc).__name__}: {exc}"
    match = re.match(r"[a-z]+", str(exc.task))
    step = match.group(0) if match else phase
    tries = exc.allowed_failures + 1
    try:
        events = client.get_events("worker-restart-memory")
    except Exception:  # an old or unreachable scheduler: report without the cause
        events = ()
    last = getattr(exc.last_worker, "address", str(exc.last_worker))
    if any(isinstance(e, dict) and e.get("worker") == last for _, e in events):
        return step, (
            f"out of memory in {step}: the workers running it went over their memory limit "
            f"and were restarted ({tries} tries, KilledWorker); run it on workers with more "
            "memory (memory_limit in the cluster config) or fewer threads each"
        )
    return step, (
        f"the workers running {step} died {tries} times (KilledWorker): out of memory, a crash "
        "in native code, or a lost machine; see the worker logs"
    )
