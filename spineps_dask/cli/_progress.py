"""Rich progress bars for long commands: one bar per phase, failures counted beside them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)


def print_error(what: str, message: object) -> None:
    """An error as one line on stderr, ``what: message``, never a traceback (issue 21 item 7).

    The message is escaped (``[cuda]`` in an install hint is text, not markup) and soft-wrapped
    (the terminal folds it; copying it gives one line).
    """
    console.print(f"[red]{escape(what)}:[/red] {escape(str(message))}", soft_wrap=True)


def make_progress() -> Progress:
    """The project's progress display (to stderr, so tables on stdout stay clean)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress]:
    """A single bar; call ``advance()`` on the yielded object's task 0."""
    with make_progress() as progress:
        progress.add_task(description, total=total, note="")
        yield progress


@contextmanager
def byte_bar(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A download bar; the yielded ``update(bytes_done, bytes_total_or_None)`` moves it.

    The bar appears with the first bytes, so nothing shows when nothing is downloaded.
    """
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        tasks: list[TaskID] = []

        def update(done: int, total: int | None) -> None:
            if not tasks:
                tasks.append(progress.add_task(description, total=total))
            progress.update(tasks[0], completed=done, total=total)

        yield update


class Counter:
    """Thread-safe counter shown as a bar (callbacks arrive on Dask's threads)."""

    def __init__(self, progress: Progress, description: str, total: int | None = 0):
        self._progress = progress
        self._lock = threading.Lock()
        self.task = progress.add_task(description, total=total, note="")

    def add_total(self, n: int) -> None:
        with self._lock:
            task = self._progress.tasks[self.task]
            self._progress.update(self.task, total=(task.total or 0) + n)

    def advance(self, n: int = 1, *, note: str | None = None) -> None:
        with self._lock:
            self._progress.advance(self.task, n)
            if note is not None:
                self._progress.update(self.task, note=note)
