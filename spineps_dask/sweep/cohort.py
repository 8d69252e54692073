"""The sweep's subjects: a phantom cohort or BIDS folder ingested into a store, or a store as is.

Only subjects with an ingested scan and both reference masks can be scored; the others are
reported with the reason and left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spineps_dask.errors import InputError
from spineps_dask.io.cohort import ingest
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.names import REFERENCES
from spineps_dask.io.references import ingest_references
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


def open_sweep_cohort(spec: CohortSpec, out: Path) -> SweepCohort:
    """Generate / ingest the cohort as the spec says and list the subjects that can be scored.

    Phantoms are written to ``out/bids`` (once; an existing folder is reused), BIDS folders are
    ingested into ``out/cohort.zarr`` (incrementally, as ``ingest`` does).
    """
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
    if bids is not None:
        url = str(out / "cohort.zarr")
        ingest(bids, url)
        references = references or (bids / GROUNDTRUTH)
    else:
        url = str(spec.store)
    store = CohortStore(url, mode="a")
    if references is not None:
        ingest_references(references, store)
    ingested = Manifest(store.manifest_url, storage_options=store.storage_options).rows(
        phase="ingest"
    )
    wanted = list(spec.subjects) if spec.subjects is not None else sorted(ingested)
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
