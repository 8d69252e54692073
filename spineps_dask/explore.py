"""Open a processed cohort in a notebook: lazy xarray volumes in mm, tables as DataFrames.

>>> cohort = open_cohort("cohort.zarr")            # doctest: +SKIP
>>> cohort.subjects[:3], cohort.manifest.head()    # doctest: +SKIP
>>> ds = cohort.dataset("sub-001")                 # image, semantic, instance; coords in mm
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from spineps_dask.errors import StoreError
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.names import IMAGE, INSTANCE, SEMANTIC, SNAPSHOT, TABLES
from spineps_dask.io.store import CohortStore
from spineps_dask.io.tables import table_from_bytes


@dataclass(frozen=True)
class Cohort:
    """Read-only view of a cohort store."""

    store: CohortStore

    @property
    def subjects(self) -> list[str]:
        return self.store.subjects()

    @property
    def manifest(self) -> pd.DataFrame:
        """All manifest rows (one per subject and phase)."""
        return Manifest(self.store.manifest_url, storage_options=self.store.storage_options).read()

    def status(self) -> pd.DataFrame:
        """One row per subject: ingest and segment status, error, seconds."""
        df = self.manifest
        wide = df[df["phase"].isin(["ingest", "segment"])].pivot_table(
            index="subject", columns="phase", values="status", aggfunc="first"
        )
        seg = df[df["phase"] == "segment"].set_index("subject")
        for col in ("error", "step", "seconds"):
            if col in seg:
                wide[col] = seg[col]
        return wide.reset_index()

    def volume(self, subject: str, name: str) -> Any:
        """Lazy ``xr.DataArray`` (dims z, y, x; coordinates in mm) of one volume."""
        return self.store.open_xarray(subject, name)

    def dataset(self, subject: str) -> Any:
        """``xr.Dataset`` with the image and whichever masks exist, on one grid."""
        import xarray as xr

        names = [n for n in (IMAGE, SEMANTIC, INSTANCE) if self.store.has_volume(subject, n)]
        return xr.Dataset({n: self.volume(subject, n) for n in names})

    def snapshot(self, subject: str) -> bytes:
        """The PNG the run made for ``subject`` (IPython: ``Image(cohort.snapshot(s))``)."""
        return self.store.read_blob(subject, SNAPSHOT)

    def table(self, kind: str) -> pd.DataFrame:
        """``'metrics'`` or ``'biomarkers'`` of every subject that has them, concatenated."""
        parts = []
        for subject in self.subjects:
            try:
                blob = self.store.read_blob(subject, TABLES[kind])
            except StoreError:  # a subject without the table simply has none
                continue
            parts.append(table_from_bytes(blob))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def open_cohort(url: str | os.PathLike, *, storage_options: dict | None = None) -> Cohort:
    """Open a cohort store (local folder or ``s3://`` URL) for reading."""
    return Cohort(CohortStore(url, mode="r", storage_options=storage_options))
