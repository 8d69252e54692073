"""What a stage hands on and how a subject ends: the types every task and driver share.

A task returns a `StageResult` (timings, workers, and the small values later stages need) or,
for an error that another try would not mend (a bad scan, a bad model, out of memory, a
library's error on a scan it cannot handle), a `Failure` value naming its step instead of
raising, so Dask does not retry it; `Guard` makes that conversion and times the stage. A
driver turns a subject's last result into a `SubjectOutcome`: its manifest rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from spineps_dask.errors import SpinepsDaskError

if TYPE_CHECKING:
    import numpy as np

    from spineps_dask.pipeline.merge import CutoutPrediction
    from spineps_dask.pipeline.naming import Naming
    from spineps_dask.pipeline.preprocess import CropRecord

logger = logging.getLogger(__name__)

#: A subject's stages, in order; each gets a manifest row when it ran (``label`` only with a
#: labelling model).
PHASES = ("prepare", "semantic", "instance", "assemble", "label", "reduce")
#: Timing key: seconds of store reads and writes, summed over a subject's tasks. Already part
#: of the phase seconds; kept apart to show what parking arrays in the store costs.
STORE_IO = "store_io"

T = TypeVar("T")


#: What a run does to a subject: segment it (and write every product), or only score its stored
#: masks against references that came after it was segmented.
TASKS = ("segment", "score")


@dataclass
class SubjectOutcome:
    """What happened to one subject in this run (its manifest rows).

    ``task``: ``segment`` (the whole graph) or ``score`` (the scoring-only task).
    ``references``: the digest of the reference masks the task scored this subject against
    (`io.references.reference_digest`), None when it was not scored; its ``score`` manifest
    row records it, so a driver decides what to score again from the manifest alone.
    ``naming``: how its vertebrae were named (`Naming.summary`), for its ``segment`` row.
    """

    subject: str
    status: str  # "done" | "failed" | "skipped"
    step: str = ""
    error: str = ""
    n_cutouts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)
    task: str = "segment"
    references: str | None = None
    naming: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A subject that cannot be finished, and why: becomes a failed manifest row."""

    subject: str
    step: str
    error: str
    timings: dict[str, float] = field(default_factory=dict)

    def outcome(self) -> SubjectOutcome:
        return SubjectOutcome(self.subject, "failed", self.step, self.error, timings=self.timings)


@dataclass(frozen=True)
class StageResult:
    """What a finished stage hands on: timings, workers, and the small values later stages need.

    ``record`` undoes the preprocessing crop/pad; ``centres`` are the cutout centres on the
    instance grid (after ``semantic``); ``predictions`` the instance model's output for a few
    cutouts (after ``instance``); ``anchor`` the rule's anchor (after ``assemble``, which
    parks the masks); ``naming`` the labelling model's naming (after ``label``).
    """

    subject: str
    timings: dict[str, float]
    workers: dict[str, str]
    record: CropRecord | None = None
    centres: np.ndarray | None = None
    predictions: tuple[CutoutPrediction, ...] = ()
    anchor: str | None = None
    naming: Naming | None = None

    @property
    def n_cutouts(self) -> int:
        return 0 if self.centres is None else len(self.centres)

    def then(self, step: str, seconds: float, io: float = 0.0, **changes: Any) -> StageResult:
        """This result plus one more stage's timing (``io``: its store seconds) and worker."""
        timings = _add(self.timings, step, seconds)
        return replace(
            self,
            timings=_add(timings, STORE_IO, io) if io else timings,
            workers={**self.workers, step: worker_name()},
            **changes,
        )

    def joined(self, parts: Sequence[StageResult]) -> StageResult:
        """This (semantic) result with its instance tasks: seconds summed, predictions in order."""
        if not parts:
            return self
        seconds = sum(p.timings["instance"] for p in parts)
        io = sum(p.timings.get(STORE_IO, 0.0) for p in parts)
        predictions = tuple(pr for p in parts for pr in p.predictions)
        return self.then("instance", seconds, io, predictions=predictions)


def _add(timings: dict[str, float], key: str, seconds: float) -> dict[str, float]:
    return {**timings, key: timings.get(key, 0.0) + seconds}


def gather(
    sem: StageResult | Failure, parts: Sequence[StageResult | Failure]
) -> StageResult | Failure:
    """A subject's semantic result joined with its instance tasks, or the first failure."""
    done: list[StageResult] = []
    for result in (sem, *parts):
        if isinstance(result, Failure):
            return result
        done.append(result)
    return done[0].joined(done[1:])


def worker_name() -> str:
    """The Dask worker running this code, or ``pid<N>`` outside a worker."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:
        return f"pid{os.getpid()}"


#: Errors that may pass on another try (a network or object store hiccup): Dask retries them.
#: Everything else fails the same way again, so it becomes a failed row at once.
_DETERMINISTIC_OS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
#: Attribute naming the step a retried error came from (it survives pickling to the driver).
STEP_ATTR = "spineps_step"


def is_transient(exc: BaseException) -> bool:
    """True for errors worth another try: I/O errors other than a missing or forbidden path."""
    return isinstance(exc, OSError) and not isinstance(exc, _DETERMINISTIC_OS)


def _where(exc: BaseException) -> str:
    """``file.py:line`` of the innermost frame of ``exc`` (where an unexpected error rose)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"


class Guard:
    """Times a stage; an error inside becomes ``self.failure`` instead of raising.

    Expected errors (our typed errors, `MemoryError`: retrying a subject too big for the
    worker only fails again, so it says "out of memory") and unexpected ones that would fail
    the same way again (a library's error on a scan it cannot handle, ``ValueError``, ...)
    become a failure of this step at once: one line in the worker's log at info level (the
    failed manifest row and the run's summary say it), the traceback at debug level. Only
    transient errors (`is_transient`: I/O other than a missing path) propagate, marked with
    their step, and Dask retries the task.

    Examples
    --------
    >>> with Guard("sub-001", "prepare") as g:  # doctest: +SKIP
    ...     image = g.store(store.read_volume, "sub-001", IMAGE)
    >>> g.failure or result.then("prepare", g.seconds, g.io)  # doctest: +SKIP
    """

    def __init__(self, subject: str, step: str, timings: dict[str, float] | None = None):
        self.subject, self.step = subject, step
        self.timings = dict(timings or {})
        self.failure: Failure | None = None
        self.seconds = 0.0
        self.io = 0.0
        self._t0 = 0.0

    def store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, a store read or write, its seconds counted in ``self.io``."""
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.io += time.perf_counter() - t0

    def __enter__(self) -> Guard:
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.seconds = time.perf_counter() - self._t0
        if exc is None or not isinstance(exc, Exception | MemoryError):
            return False  # KeyboardInterrupt, SystemExit: not the subject's fault
        if is_transient(exc):
            setattr(exc, STEP_ATTR, self.step)  # the driver names the step that raised
            return False
        message = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):  # this subject is too big for the worker
            message = (
                f"out of memory in {self.step} (MemoryError: {message}); run it on workers "
                "with more memory (memory_limit in the cluster config) or fewer threads each"
            )
        elif not isinstance(exc, SpinepsDaskError):
            message = (
                f"unexpected error in {self.step}: {type(exc).__name__}: {message} (at "
                f"{_where(exc)}); not retried, it would fail the same way; the worker's log "
                "has the traceback at debug level"
            )
        # info: the failed manifest row and the run's summary say it (issue 21 item 6)
        logger.info("%s failed in %s: %s", self.subject, self.step, message)
        logger.debug("%s failed in %s", self.subject, self.step, exc_info=exc)
        self.failure = Failure(
            self.subject, self.step, message, {**self.timings, self.step: self.seconds}
        )
        return True
