"""Run a store resumably: pick the subjects not done yet, run them, record them in the manifest.

A subject is done when its ``segment`` row is ok with the current config fingerprint and its
output arrays are complete and intact (their checksums). A done subject whose reference masks
are new or changed since it was scored (their digest differs from the one its ``score`` row
recorded) gets a scoring-only task: no model runs again. Damaged references are not scored
(and fail no row) until they are ingested again. Rows are flushed every few seconds and when
a run stops (Ctrl-C included), so re-running the same command continues where it stopped.

At cohort scale (issue 19) the driver plans from one read of the manifest (`plan_subjects`)
and touches no subject's arrays: the done subjects' outputs and references are checked by
tasks on the cluster while the others run (`check_done`), and the reference digest a subject
was scored against is taken by the task that scored it (`SubjectOutcome.references`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distributed import Client

from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import PHASES, SubjectOutcome
from spineps_dask.distributed.runner import RunEvents, run_cohort
from spineps_dask.errors import StoreError
from spineps_dask.io.integrity import intact
from spineps_dask.io.lock import writer_lock
from spineps_dask.io.manifest import Manifest, make_row
from spineps_dask.io.names import OUTPUTS, REFERENCES
from spineps_dask.io.references import reference_digest
from spineps_dask.io.store import CohortStore

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: The manifest columns a run's plan reads (besides the key), once, at start-up.
_PLAN_COLUMNS = ("status", "config", "sha256")


@dataclass
class RunSummary:
    """Result of `run_store`: outcomes of processed subjects, subjects skipped as done."""

    run_id: str
    outcomes: list[SubjectOutcome]
    skipped: list[str]
    wall_seconds: float

    @property
    def done(self) -> list[SubjectOutcome]:
        """Subjects segmented in this run."""
        return [o for o in self.outcomes if o.status == "done" and o.task == "segment"]

    @property
    def failed(self) -> list[SubjectOutcome]:
        """Subjects that failed, segmenting or scoring (the step says which)."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def scored(self) -> list[SubjectOutcome]:
        """Finished subjects scored against new or changed references (no model ran)."""
        return [o for o in self.outcomes if o.status == "done" and o.task == "score"]

    @property
    def subjects_per_hour(self) -> float:
        return 3600.0 * len(self.done) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def phase_seconds(self) -> dict[str, float]:
        """Summed task seconds per phase over the subjects that finished."""
        total: dict[str, float] = {}
        for o in self.done:
            for k, v in o.timings.items():
                total[k] = total.get(k, 0.0) + v
        return total

    def __str__(self) -> str:
        scored = f", {len(self.scored)} scored" if self.scored else ""
        return (
            f"run {self.run_id}: {len(self.done)} done, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped{scored}, {self.subjects_per_hour:.0f} subjects/hour, "
            f"{self.wall_seconds:.1f} s"
        )


def select_subjects(
    store: CohortStore,
    manifest: Manifest,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
    verify: bool = False,
) -> tuple[list[str], list[str]]:
    """``(to_process, skipped)``: ingested subjects minus those already done with this config.

    Done means: a ``segment`` row with status ok, the same config fingerprint, and both output
    arrays present, marked complete and matching the checksums written with them (a
    half-written or damaged mask never counts): the stored chunk sizes, or with ``verify``
    every voxel. A damaged subject is segmented again. `run_store` does the same with the
    checks on the cluster, beside the run (`plan_subjects`, `check_done`).
    """
    asked = list(subjects) if subjects is not None else None
    todo, done = plan_subjects(manifest, cfg, subjects=asked, force=force)
    damaged = set(damaged_subjects(store, done, full=verify))
    return _in_order(todo, damaged, asked), [s for s in done if s not in damaged]


def plan_subjects(
    manifest: Manifest,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
) -> tuple[list[str], list[str]]:
    """``(to_process, done_by_the_manifest)`` from the manifest alone, in one read.

    Vectorised over the manifest's rows and with no call to the store per subject: at
    100 000 subjects this is what a run waits for before its first task (issue 19). The
    ``done`` subjects still need their outputs checked (`check_done`) before they count.
    """
    return _plan(_read_plan(manifest), cfg, subjects=subjects, force=force)


def _read_plan(manifest: Manifest) -> pd.DataFrame:
    """The one manifest read of a run's start-up: the key and `_PLAN_COLUMNS` of every row."""
    return manifest.read(columns=_PLAN_COLUMNS)


def _plan(
    df: pd.DataFrame, cfg: RunConfig, *, subjects: Iterable[str] | None, force: bool
) -> tuple[list[str], list[str]]:
    ok = df["status"] == "ok"
    ingested = set(df.loc[ok & (df["phase"] == "ingest"), "subject"])
    segment = ok & (df["phase"] == "segment")
    if "config" in df:
        segment &= df["config"] == cfg.fingerprint()
    finished = set() if force else set(df.loc[segment, "subject"])
    wanted = list(subjects) if subjects is not None else sorted(ingested)
    # never ingested, or failed at ingest: not taken (its ingest row says why)
    wanted = [s for s in wanted if s in ingested]
    return [s for s in wanted if s not in finished], [s for s in wanted if s in finished]


def _scored(df: pd.DataFrame, cfg: RunConfig) -> dict[str, str]:
    """``{subject: reference digest}`` its ok ``score`` row with this config fingerprint
    recorded: what it was last scored against. From the start-up read, vectorised."""
    if not cfg.metrics or "config" not in df:
        return {}
    rows = (
        (df["phase"] == "score")
        & (df["status"] == "ok")
        & df["sha256"].notna()
        & (df["config"] == cfg.fingerprint())
    )
    return dict(zip(df.loc[rows, "subject"], df.loc[rows, "sha256"], strict=True))


@dataclass
class DoneCheck:
    """What `check_done` found among subjects done by the manifest.

    ``damaged``: outputs missing, incomplete or damaged (segmented again); ``score``:
    ``{subject: reference digest}`` of the intact ones whose references are new or changed
    since they were scored (a scoring-only task each).
    """

    damaged: list[str] = field(default_factory=list)
    score: dict[str, str] = field(default_factory=dict)

    def __iadd__(self, other: DoneCheck) -> DoneCheck:
        self.damaged += other.damaged
        self.score.update(other.score)
        return self


def check_done(
    store: CohortStore,
    subjects: Iterable[str],
    scored: dict[str, str],
    *,
    full: bool,
    metrics: bool = True,
) -> DoneCheck:
    """Check the ``subjects`` done by the manifest: their outputs (`verify_volume`: chunk
    sizes, or every voxel with ``full``), and with ``metrics`` their references against the
    digest they were scored against (``scored``, from the manifest). A task: `run_store`
    checks in batches on the cluster, where reading a store costs the driver nothing."""
    out = DoneCheck()
    for s in subjects:
        if not (
            all(store.has_volume(s, n) for n in OUTPUTS)
            and intact(store, s, OUTPUTS, full=full, then="segmenting it again")
        ):
            out.damaged.append(s)
        elif metrics and (digest := _late_references(store, s, scored.get(s), full=full)):
            out.score[s] = digest
    return out


def damaged_subjects(store: CohortStore, subjects: Iterable[str], *, full: bool) -> list[str]:
    """The ``subjects`` whose outputs are missing, incomplete or damaged (`check_done`)."""
    return check_done(store, subjects, {}, full=full, metrics=False).damaged


def _in_order(todo: list[str], damaged: set[str], asked: list[str] | None) -> list[str]:
    """``todo`` plus the ``damaged`` done subjects, in the order asked (default: sorted)."""
    if not damaged:
        return todo
    if asked is None:
        return sorted([*todo, *damaged])
    order = {s: i for i, s in enumerate(asked)}
    return sorted({*todo, *damaged}, key=order.__getitem__)


def _late_references(
    store: CohortStore, subject: str, scored: str | None, *, full: bool
) -> str | None:
    """The digest of the subject's references when they are not the ones it was ``scored``
    against and are intact; None when it has none, they were scored, or they are damaged."""
    digest = reference_digest(store, subject)
    if digest is None or digest == scored:
        return None
    # Damaged references are not scored and fail no row: the masks are sound, and the
    # subject is scored once its references are ingested again.
    again = "not scored until its references are ingested again"
    return digest if intact(store, subject, REFERENCES, full=full, then=again) else None


def to_score(
    store: CohortStore,
    manifest: Manifest,
    cfg: RunConfig,
    subjects: Iterable[str],
    *,
    verify: bool = False,
) -> dict[str, str]:
    """``{subject: reference digest}`` of the ``subjects`` whose references were not scored
    with these masks: no ok ``score`` row with this digest and config fingerprint. References
    that are damaged (`intact`; ``verify``: every voxel) are left out. What
    `check_done` finds on the cluster for a run, here on the caller's side."""
    if not cfg.metrics:
        return {}
    scored = _scored(_read_plan(manifest), cfg)
    return {
        s: d
        for s in subjects
        if (d := _late_references(store, s, scored.get(s), full=verify)) is not None
    }


def outcome_rows(outcome: SubjectOutcome, *, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Manifest rows for one subject: a ``segment`` row plus one row per phase it ran, and a
    ``score`` row recording ``outcome.references`` (the digest of the references the task
    scored it against) when it was scored. A scoring-only outcome gives the ``score`` row
    alone.

    ``common``: run id, config fingerprint and model versions, computed once per run.
    """
    status = {"done": "ok", "failed": "failed", "skipped": "skipped"}[outcome.status]
    score_row = make_row(
        outcome.subject,
        status,
        phase="score",
        sha256=outcome.references,
        error=outcome.error or None,
        step=outcome.step or None,
        seconds=outcome.timings.get("score"),
        **common,
    )
    if outcome.task == "score":
        return [score_row]
    rows = [
        make_row(
            outcome.subject,
            status,
            phase="segment",
            error=outcome.error or None,
            step=outcome.step or None,
            seconds=outcome.timings.get("wall"),
            timings=outcome.timings,
            worker=",".join(sorted(set(outcome.workers.values()))) or None,
            n_cutouts=outcome.n_cutouts,
            **outcome.naming,
            **common,
        )
    ]
    for phase in PHASES:
        if phase in outcome.timings:
            failed_here = outcome.status == "failed" and outcome.step == phase
            rows.append(
                make_row(
                    outcome.subject,
                    "failed" if failed_here else "ok",
                    phase=phase,
                    seconds=outcome.timings[phase],
                    worker=outcome.workers.get(phase),
                    error=outcome.error if failed_here else None,
                    **common,
                )
            )
    if outcome.references is not None and outcome.status == "done":
        rows.append(score_row)
    return rows


def run_store(
    client: Client,
    store: CohortStore,
    cfg: RunConfig,
    *,
    subjects: Iterable[str] | None = None,
    force: bool = False,
    events: RunEvents | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    flush_seconds: float = 10.0,
    verify: bool = False,
) -> RunSummary:
    """Process every ingested subject of ``store`` that is not done yet; resumable.

    Holds the store's lock throughout (or runs inside the caller's, `run_batch`). Manifest
    rows are flushed every ``flush_seconds`` and at the end, so an interrupted run keeps the
    subjects it finished. The driver starts after one read of the manifest (`plan_subjects`):
    the subjects done by the manifest are checked on the cluster while the others run
    (`check_done`); after them, the damaged ones are segmented again and those with new or
    changed references scored (no model runs). ``verify``: check every voxel of the subjects
    it skips as done, and of the references it scores, not only their stored chunk sizes.

    Raises
    ------
    StoreError
        Another run holds the store, or the manifest cannot be written at the end (the file
        on disk then stays the previous, whole one).
    """
    with writer_lock(store, purpose="run"):
        manifest = store.manifest
        plan = _read_plan(manifest)
        todo, done = _plan(plan, cfg, subjects=subjects, force=force)
        checks = _DoneChecks(
            client, store, done, _scored(plan, cfg), full=verify, metrics=cfg.metrics
        )  # on the cluster, meanwhile
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]
        logger.info("run %s: %d to process, %d already done", run_id, len(todo), len(done))
        # Hashing the model folders once per run, not once per finished subject.
        common = {"run_id": run_id, "config": cfg.fingerprint(), "models": cfg.model_versions()}
        rows = _PendingRows(manifest, flush_seconds)
        t0 = time.perf_counter()

        def run(part: list[str], score: Iterable[str] = ()) -> list[SubjectOutcome]:
            return run_cohort(
                client,
                store,
                part,
                cfg,
                max_in_flight=max_in_flight,
                retries=retries,
                events=events,
                on_outcome=lambda o: rows.add(outcome_rows(o, common=common)),
                score=score,
            )

        found = DoneCheck()
        try:
            outcomes = run(todo)
            found = checks.result()
            if found.damaged or found.score:
                logger.info(
                    "run %s: %d done subjects to segment again (damaged outputs), %d to score "
                    "against new references",
                    run_id,
                    len(found.damaged),
                    len(found.score),
                )
                outcomes += run(found.damaged, score=sorted(found.score))
        except BaseException:
            try:
                rows.flush()
            except StoreError as exc:  # keep the error that stopped the run
                logger.error("manifest not written on stopping: %s", exc)
            raise
        rows.flush()  # raises StoreError (the manifest on disk stays whole) when it is full
        damaged = set(found.damaged)
        skipped = [s for s in done if s not in damaged]
        return RunSummary(run_id, outcomes, skipped, time.perf_counter() - t0)


class _DoneChecks:
    """`check_done` of the subjects done by the manifest, in batches on the cluster while the
    run segments the others: the driver never reads their outputs or references."""

    BATCH = 500  # subjects per check task: a few seconds of a worker, 200 tasks at 100 000

    def __init__(
        self,
        client: Client,
        store: CohortStore,
        done: list[str],
        scored: dict[str, str],
        *,
        full: bool,
        metrics: bool,
    ):
        self.store, self.full, self.metrics = store, full, metrics
        self.batches = [done[i : i + self.BATCH] for i in range(0, len(done), self.BATCH)]
        self.scored = [{s: scored[s] for s in b if s in scored} for b in self.batches]
        self.futures = client.map(
            check_done,
            [store] * len(self.batches),
            self.batches,
            self.scored,
            full=full,
            metrics=metrics,
            pure=False,
            priority=-1,
        )

    def result(self) -> DoneCheck:
        """What the checks found (waits for them); a batch whose task failed (its worker
        lost) is checked here instead."""
        out = DoneCheck()
        for batch, scored, future in zip(self.batches, self.scored, self.futures, strict=True):
            try:
                out += future.result()
            except Exception as exc:
                logger.warning(
                    "checking %d done subjects failed on the cluster (%s); checking them here",
                    len(batch),
                    exc,
                )
                out += check_done(self.store, batch, scored, full=self.full, metrics=self.metrics)
        return out


class _PendingRows:
    """Manifest rows not written yet; written every ``seconds`` and by `flush`."""

    def __init__(self, manifest: Manifest, seconds: float) -> None:
        self.manifest, self.seconds = manifest, seconds
        self.pending: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.pending.extend(rows)
        if time.monotonic() - self.last > self.seconds:
            try:
                self.flush()
            except StoreError as exc:  # maybe space comes back; the final flush decides
                logger.error(
                    "manifest not written, %d rows kept for later: %s", len(self.pending), exc
                )

    def flush(self) -> None:
        """Write the pending rows (StoreError on a full disk: they stay pending)."""
        self.last = time.monotonic()
        if self.pending:
            self.manifest.upsert(self.pending)
            self.pending.clear()
