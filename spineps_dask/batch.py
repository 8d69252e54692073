"""Run a cohort from Python: the one entry point `spineps-dask run`, notebooks and scripts share.

`run_batch` opens (or creates) the store once, ingests new scans and reference masks when
asked, starts or joins a cluster (or uses a client it is given), runs every subject that is
not done yet, exports NIfTI when asked, and returns the `RunSummary`. The CLI only turns its
arguments into this call and draws progress from `BatchEvents`.

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
from spineps_dask.distributed.cluster import cluster_client
from spineps_dask.distributed.resume import RunSummary, run_store
from spineps_dask.distributed.runner import RunEvents
from spineps_dask.io.cohort import IngestSummary, ingest
from spineps_dask.io.export import export as export_nifti
from spineps_dask.io.references import ReferenceSummary, ingest_references
from spineps_dask.io.store import CohortStore
from spineps_dask.models.folders import load_model_folder

logger = logging.getLogger(__name__)


class BatchEvents(RunEvents):
    """`RunEvents` plus what happens around the run (the CLI prints them). No-ops here."""

    def ingested(self, summary: IngestSummary) -> None: ...
    def references_ingested(self, found: ReferenceSummary) -> None: ...
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
    retries: int = 2,
    events: BatchEvents | None = None,
    report: str | os.PathLike | None = None,
    export: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
) -> RunSummary:
    """Segment every ingested subject of ``store`` that is not done yet; resumable.

    Parameters
    ----------
    store
        Cohort store: a folder, an fsspec URL (``s3://...``, credentials in
        ``storage_options`` or the environment) or an open `CohortStore`; created if missing.
    cfg
        Models and settings (default: the shipped demo models, the paper's settings).
    bids, references
        Ingest the new and changed scans of this BIDS folder first; and the reference masks
        of this derivatives folder (the subjects that have them are then scored).
    cluster, client, workers, threads
        Run on ``client`` if given; otherwise start ``cluster`` (``local``, ``cuda``,
        ``slurm``, a YAML file or a scheduler address, see `cluster_client`) and close it
        afterwards. ``workers``/``threads``: its layout.
    max_in_flight, force, retries
        Subjects in the cluster at once; recompute finished subjects; retries of a task
        whose worker died.
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
        A model folder is missing or broken (checked before anything starts).
    StoreError
        The store is locked by another run, not writable, or full.
    ModuleNotFoundError
        ``report`` is asked for but bokeh, which draws it, is not installed.
    """
    cfg = cfg or RunConfig()
    events = events or BatchEvents()
    load_model_folder(cfg.semantic_model, kind="semantic")
    load_model_folder(cfg.instance_model, kind="instance")
    if cfg.labeling_folder is not None:
        load_model_folder(cfg.labeling_folder, kind="labeling")
    if report is not None and importlib.util.find_spec("bokeh") is None:
        # Checked before any work: distributed draws the report with bokeh only at the end.
        raise ModuleNotFoundError("report= needs bokeh (pip install bokeh); nothing was run")
    if not isinstance(store, CohortStore):
        store = CohortStore(store, mode="a", storage_options=storage_options)
    if bids is not None:
        events.ingested(ingest(bids, store))
    if references is not None:
        events.references_ingested(ingest_references(references, store))
    with cluster_client(cluster, client=client, workers=workers, threads=threads) as c:
        events.cluster_ready(str(c.dashboard_link))
        with performance_report_to(report):
            summary = run_store(
                c,
                store,
                cfg,
                force=force,
                events=events,
                max_in_flight=max_in_flight,
                retries=retries,
            )
    logger.info("%s", summary)
    if export is not None:
        events.exported(Path(export), export_nifti(store, export))
    return summary


def performance_report_to(path: str | os.PathLike | None) -> contextlib.AbstractContextManager:
    """Dask's performance report of what runs inside, saved as HTML at ``path`` (or nothing)."""
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    return performance_report(filename=str(path))
