"""The sweep's subjects: a phantom cohort or BIDS folder ingested into a store, or a store as is.

The scans and reference masks are read and written by the sweep's workers, as `run` ingests
(`distributed.ingest`, issue 19): the driver only lists them. Only subjects with an ingested
scan and both reference masks can be scored; the others are reported with the reason and left
out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import Client

from spineps_dask.distributed.ingest import ingest_inputs
from spineps_dask.errors import InputError
from spineps_dask.io.cohort import Scan, discover_scans
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.names import REFERENCES
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort
from spineps_dask.sweep.config import CohortSpec, SweepConfigError

logger = logging.getLogger(__name__)


@dataclass
class SweepCohort:
    """The store, the subjects to sweep, and the subjects left out with why."""

    store: CohortStore
    subjects: list[str]
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CohortPlan:
    """What the driver settles before a cluster starts: the store, the scans to ingest (listed
    once, nothing opened) and the reference folder."""

    store_url: str
    bids: Path | None = None
    scans: list[Scan] | None = None
    references: Path | None = None


def plan_sweep_cohort(spec: CohortSpec, out: Path) -> CohortPlan:
    """Write the spec's phantoms to ``out/bids`` (once; an existing folder is reused) and list
    the scans of its BIDS folder, so that a bad phantom option or a missing folder is an error
    before a cluster is started or a store created."""
    bids, references = spec.bids, spec.references
    if spec.phantom is not None:
        bids = out / "bids"
        if not bids.exists():
            extra: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v
                for k, v in spec.phantom.items()
                if k not in ("subjects", "seed")
            }
            try:
                write_bids_cohort(
                    bids,
                    subjects=int(spec.phantom["subjects"]),
                    seed=int(spec.phantom.get("seed", 0)),
                    **extra,
                )
            except (InputError, TypeError, ValueError) as exc:
                raise SweepConfigError(f"cohort.phantom: {exc}", step="sweep config") from exc
    if bids is None:
        return CohortPlan(str(spec.store), references=references)
    return CohortPlan(
        str(out / "cohort.zarr"),
        bids=bids,
        scans=discover_scans(bids),
        references=references or (bids / GROUNDTRUTH),
    )


def open_sweep_cohort(
    plan: CohortPlan, subjects: tuple[str, ...] | None, client: Client
) -> SweepCohort:
    """Ingest the plan's scans and reference masks on ``client``'s workers (incrementally, as
    ``ingest`` does) and list the ``subjects`` (default: all ingested) that can be scored."""
    store = CohortStore(plan.store_url, mode="a")
    ingest_inputs(client, store, bids=plan.bids, references=plan.references, scans=plan.scans)
    ingested = Manifest(store.manifest_url, storage_options=store.storage_options).rows(
        phase="ingest"
    )
    wanted = list(subjects) if subjects is not None else sorted(ingested)
    cohort = SweepCohort(store, [])
    for subject in wanted:
        row = ingested.get(subject)
        if row is None:
            cohort.left_out[subject] = "not in the store"
        elif row["status"] != "ok":
            cohort.left_out[subject] = f"failed at ingest: {row.get('error')}"
        elif not all(store.has_volume(subject, r) for r in REFERENCES):
            cohort.left_out[subject] = "no reference masks (cohort.references)"
        else:
            cohort.subjects.append(subject)
    for subject, why in cohort.left_out.items():
        logger.warning("sweep leaves out %s: %s", subject, why)
    return cohort
