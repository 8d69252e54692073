"""Run a cohort from Python: the one entry point `spineps-dask run`, notebooks and scripts share.

`run_batch` opens (or creates) the store once, starts or joins a cluster (or uses a client it
is given), ingests new scans and reference masks when asked (on the workers), runs every
subject that is not done yet, exports NIfTI when asked, and returns the `RunSummary`.
`run_ingest` (``spineps-dask ingest``) does the ingest alone, on a cluster started or joined
the same way. The CLI only turns its arguments into these calls and draws progress from
`BatchEvents`.

>>> from spineps_dask import RunConfig, run_batch
>>> summary = run_batch("cohort.zarr", RunConfig(n4=False), bids="bids/")  # doctest: +SKIP
>>> print(summary)  # doctest: +SKIP
run 20261202T051228-7f39: 4 done, 0 failed, 0 skipped, 900 subjects/hour, 16.0 s
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from spineps_dask.config import RunConfig
from spineps_dask.distributed.cluster import check_cluster, cluster_client
from spineps_dask.distributed.ingest import IngestEvents, ingest_inputs
from spineps_dask.distributed.resume import RunSummary, run_store
from spineps_dask.distributed.runner import RunEvents
from spineps_dask.errors import StoreError
from spineps_dask.io._urls import redact_url
from spineps_dask.io.cohort import IngestSummary, discover_scans
from spineps_dask.io.export import export as export_nifti
from spineps_dask.io.lock import INGEST_WAIT_S, writer_lock
from spineps_dask.io.references import ReferenceSummary
from spineps_dask.io.store import CohortStore, store_exists
from spineps_dask.io.validate import ScanLimits
from spineps_dask.models.folders import check_weights
from spineps_dask.pipeline.segment import check_model_set, model_modality

logger = logging.getLogger(__name__)


class BatchEvents(RunEvents, IngestEvents):
    """`RunEvents` and `IngestEvents` plus what happens around the run (the CLI prints them).
    No-ops here."""

    def scans_found(self, n: int) -> None: ...
    def cluster_ready(self, dashboard: str) -> None: ...
    def exported(self, folder: Path, paths: list[Path]) -> None: ...


def run_batch(
    store: str | os.PathLike | CohortStore,
    cfg: RunConfig | None = None,
    *,
    bids: str | os.PathLike | None = None,
    references: str | os.PathLike | None = None,
    cluster: str = "local",
    client: Any = None,
    workers: int | None = None,
    threads: int | None = None,
    max_in_flight: int | None = None,
    force: bool = False,
    verify: bool = False,
    retries: int = 2,
    events: BatchEvents | None = None,
    report: str | os.PathLike | None = None,
    export: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
    suffix: str | None = None,
) -> RunSummary:
    """Segment every ingested subject of ``store`` that is not done yet; resumable.

    Parameters
    ----------
    store
        Cohort store: a folder, an fsspec URL (``s3://...``, credentials in
        ``storage_options`` or the environment) or an open `CohortStore`. Created when
        ``bids`` is given; without it a store that does not exist is an error (a typo must not
        start a cluster to process nothing).
    cfg
        Models and settings (default: the shipped demo models, the paper's settings).
    bids, references
        Ingest the new and changed scans of this BIDS folder first; and the reference masks
        of this derivatives folder (the subjects that have them are then scored).
    suffix
        BIDS suffix of the scans ``bids`` ingests (``*_<suffix>.nii[.gz]``); default ``ct``
        when the semantic model is a CT model (the reference's CT scans, ``sub-X_ct.nii.gz``),
        else ``T2w``.
    cluster, client, workers, threads
        Run on ``client`` if given; otherwise start ``cluster`` (``local``, ``cuda``,
        ``slurm``, a YAML file or a scheduler address, see `cluster_client`) and close it
        afterwards. ``workers``/``threads``: its layout.
    max_in_flight, force, verify, retries
        Subjects in the cluster at once; recompute finished subjects; check every voxel of
        finished subjects against their checksums (default: their stored chunk sizes), and
        redo the damaged ones; retries of a task that raised a transient I/O error.
    events
        Progress hooks (`BatchEvents`).
    report
        Save Dask's performance report of the run here (HTML).
    export
        Write NIfTI outputs with BIDS derivative names to this folder after the run.

    Returns
    -------
    RunSummary
        Outcomes of the subjects processed and those skipped as done.

    Raises
    ------
    ModelError
        A model folder is missing or broken, a checkpoint holds pickled objects that are
        not weights, or the labelling model is for other scans (CT / MR) than the semantic
        model (all checked before anything starts).
    ClusterError
        The cluster is unknown or its backend not installed (checked before anything starts),
        or its workers cannot run the model tasks.
    StoreError
        The store does not exist and ``bids`` is not given (checked before anything starts);
        it is locked by another run or ingest (checked before anything is written), not
        writable, or full.
    ModuleNotFoundError
        ``report`` is asked for but bokeh, which draws it, is not installed.
    """
    cfg = cfg or RunConfig()
    events = events or BatchEvents()
    semantic = check_weights(cfg.semantic_model, kind="semantic")  # before store, cluster, task
    check_weights(cfg.instance_model, kind="instance")
    if cfg.labeling_folder is not None:
        labeling = check_weights(cfg.labeling_folder, kind="labeling")
        check_model_set(semantic.config, labeling.config)  # a CT model with an MR one, ...
    if report is not None and importlib.util.find_spec("bokeh") is None:
        # Checked before any work: distributed draws the report with bokeh only at the end.
        raise ModuleNotFoundError("report= needs bokeh (pip install bokeh); nothing was run")
    if not isinstance(store, CohortStore) and bids is None:
        url = os.fspath(store)
        if not store_exists(url, storage_options=storage_options):
            raise StoreError(
                f"no cohort store at {redact_url(url)}; check the path, or give the BIDS "
                "folder with -i/--input (bids=) to ingest it into a new store"
            )
    if client is None:
        check_cluster(cluster)
    if not isinstance(store, CohortStore):
        store = CohortStore(store, mode="a", storage_options=storage_options)
    # One lock from the first write to the last: another driver, or an ingest, started
    # meanwhile is refused before it touches a scan this run is segmenting.
    with writer_lock(store, purpose="run"):
        with cluster_client(cluster, client=client, workers=workers, threads=threads) as c:
            events.cluster_ready(str(c.dashboard_link))
            if suffix is None:
                suffix = "ct" if model_modality(semantic.config) == "CT" else "T2w"
            ingest_inputs(c, store, bids=bids, references=references, suffix=suffix, events=events)
            with performance_report_to(report):
                summary = run_store(
                    c,
                    store,
                    cfg,
                    force=force,
                    verify=verify,
                    events=events,
                    max_in_flight=max_in_flight,
                    retries=retries,
                )
        logger.info("%s", summary)
        if export is not None:
            events.exported(Path(export), export_nifti(store, export))
    return summary


def run_ingest(
    store: str | os.PathLike | CohortStore,
    bids: str | os.PathLike,
    *,
    references: str | os.PathLike | None = None,
    cluster: str = "local",
    client: Any = None,
    workers: int | None = None,
    threads: int | None = None,
    suffix: str = "T2w",
    limits: ScanLimits | None = None,
    events: BatchEvents | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple[IngestSummary, ReferenceSummary | None]:
    """Ingest a BIDS cohort (and reference masks) into ``store`` without running anything.

    What ``spineps-dask ingest`` does, and the ingest of `run_batch`: the scans (and masks)
    are read and written by a cluster's workers (`ingest_on_cluster`), this process only
    lists and plans. ``cluster``, ``client``, ``workers``, ``threads`` as for `run_batch`
    (default: a local cluster, closed afterwards). Bad scans become failed manifest rows and
    the rest is ingested; ``limits``: what a usable scan (or reference) is.

    Returns
    -------
    (IngestSummary, ReferenceSummary or None)
        What became of each scan, and of each subject's references when ``references`` is
        given.

    Raises
    ------
    InputError
        ``bids`` is not a folder (checked before the store is created or a cluster started).
    ClusterError
        The cluster is unknown or its backend not installed.
    StoreError
        The store is locked by a run (an ingest waits for another ingest), not writable, or
        full.
    """
    events = events or BatchEvents()
    scans = discover_scans(bids, suffix=suffix)  # a missing folder: no store, no cluster
    events.scans_found(len(scans))
    if client is None:
        check_cluster(cluster)
    if not isinstance(store, CohortStore):
        store = CohortStore(store, mode="a", storage_options=storage_options)
    # Locked before the cluster starts: beside a run it is refused at once, having started
    # nothing; beside another ingest it waits, as `io.cohort.ingest` does.
    with (
        writer_lock(store, purpose="ingest", wait=INGEST_WAIT_S),
        cluster_client(cluster, client=client, workers=workers, threads=threads, setup=False) as c,
    ):
        summary, refs = ingest_inputs(
            c,
            store,
            bids=bids,
            references=references,
            suffix=suffix,
            limits=limits,
            events=events,
            scans=scans,
        )
    assert summary is not None  # bids was given
    return summary, refs


def performance_report_to(path: str | os.PathLike | None) -> contextlib.AbstractContextManager:
    """Dask's performance report of what runs inside, saved as HTML at ``path`` (or nothing)."""
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    return performance_report(filename=str(path))
