"""The bounded window under `run` and `sweep`, driven with stand-in tasks (this file is about
scheduling, not segmentation): it never holds more subjects than its size, hands every result
back, and turns a task that raised into a `Failure` naming the step."""

from __future__ import annotations

import logging
import time

import pytest
from distributed import Client, LocalCluster

from spineps_dask.distributed.outcomes import Failure
from spineps_dask.distributed.window import Window
from spineps_dask.errors import ClusterError
from tests.clusters import in_process_client


def _stand_in_echo(x: str) -> str:
    time.sleep(0.05)
    return x


def _stand_in_bug(x: str) -> str:
    raise RuntimeError(f"stand-in bug on {x}")


@pytest.fixture(scope="module")
def client():
    with in_process_client(threads=2, model_slots=2) as c:
        yield c


def test_never_more_subjects_in_flight_than_its_size(client):
    window = Window(client, size=2)
    in_flight: set[str] = set()
    peak, results = [0], []

    def start(subject: str) -> None:
        in_flight.add(subject)
        peak[0] = max(peak[0], len(in_flight))
        prep = window.submit(subject, _stand_in_echo, subject, name="prepare")
        window.watch(prep, subject, "prepare")

    def on_result(done, result) -> None:
        results.append(result)
        in_flight.discard(done.subject)
        window.finish(done.subject)

    subjects = [f"sub-{i}" for i in range(7)]
    window.run(subjects, start, on_result)
    assert peak[0] == 2
    assert sorted(results) == subjects


def test_a_task_that_raises_comes_back_as_a_failure_naming_its_step(client):
    window = Window(client, size=1, retries=0)
    got = []

    def start(subject: str) -> None:
        sem = window.submit(subject, _stand_in_bug, subject, name="semantic", model=True)
        window.watch(sem, subject, "semantic")

    def on_result(done, result) -> None:
        got.append(result)
        window.finish(done.subject)

    window.run(["sub-1"], start, on_result)
    assert got == [Failure("sub-1", "semantic", "RuntimeError: stand-in bug on sub-1")]


def _stand_in_next(x: str) -> str:
    return x


def test_a_failure_names_the_step_that_raised_not_the_one_watched(client, caplog):
    """The watched task only depends on the one that raised (prepare -> semantic): the
    failure names ``prepare``, and the driver logs it in one line at info (issue 21 item 6: the
    failed row says it), without a traceback (that is at debug)."""
    window = Window(client, size=1, retries=0)
    got = []

    def start(subject: str) -> None:
        prep = window.submit(subject, _stand_in_bug, subject, name="prepare")
        sem = window.submit(subject, _stand_in_next, prep, name="semantic", model=True)
        window.watch(sem, subject, "semantic")

    def on_result(done, result) -> None:
        got.append(result)
        window.finish(done.subject)

    with caplog.at_level("DEBUG", logger="spineps_dask.distributed.window"):
        window.run(["sub-1"], start, on_result)
    assert got == [Failure("sub-1", "prepare", "RuntimeError: stand-in bug on sub-1")]
    mine = [r for r in caplog.records if r.name == "spineps_dask.distributed.window"]
    (line,) = [r for r in mine if r.levelno >= logging.INFO]
    assert line.levelname == "INFO"
    assert line.getMessage() == "sub-1 failed in prepare: RuntimeError: stand-in bug on sub-1"
    assert line.exc_info is None
    (trace,) = [r for r in mine if r.levelno == logging.DEBUG and r.exc_info]
    assert trace.getMessage() == "sub-1 failed in prepare"


def test_default_size_keeps_every_worker_busy(client):
    """Twice the workers plus one: results come back while the next subjects run."""
    assert Window(client).size == 3


@pytest.mark.parametrize("threads", [1, 2])
def test_workers_without_a_model_slot_are_caught_at_the_start(threads):
    """Issue 21 item 3: hand-started workers without ``--resources MODEL=1`` made model tasks
    wait forever. Single-thread workers run them anyway (one at a time each is what the slot
    would give); with more threads the window refuses at once and says what to add."""
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        if threads > 1:
            with pytest.raises(ClusterError, match=r"--resources MODEL=1`.*--nthreads 1"):
                Window(c)
            return
        window = Window(c)
        results = []

        def start(subject: str) -> None:
            f = window.submit(subject, _stand_in_echo, subject, name="semantic", model=True)
            window.watch(f, subject, "semantic")

        window.run(["sub-1"], start, lambda done, r: (results.append(r), window.finish("sub-1")))
        assert results == ["sub-1"]
