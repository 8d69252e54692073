"""Open a processed cohort in a notebook: lazy xarray volumes in mm, tables as DataFrames.

>>> cohort = open_cohort("cohort.zarr")            # doctest: +SKIP
>>> cohort.subjects[:3], cohort.manifest.head()    # doctest: +SKIP
>>> ds = cohort.dataset("sub-001")                 # image, semantic, instance; coords in mm
>>> ds["image"].isel(right=ds.sizes["right"] // 2)  # sagittal, whatever the stored order
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spineps_dask.errors import StoreError
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.names import IMAGE, INSTANCE, PARTICIPANTS, SEMANTIC, SNAPSHOT, TABLES
from spineps_dask.io.store import CohortStore
from spineps_dask.io.tables import table_from_bytes
from spineps_dask.keys import ID_COLUMNS, identity


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
        """One row per scan: its key, person and visit, ingest and segment status, state,
        and for a failed scan the phase, step and error (ingest failures included)."""
        from spineps_dask.viz.cohort import subject_states

        df = self.manifest
        states = subject_states(df).rename(columns={"subject": "scan"})
        wide = df[df["phase"].isin(["ingest", "segment"])].pivot_table(
            index="subject", columns="phase", values="status", aggfunc="first"
        )
        seconds = df[df["phase"] == "segment"].set_index("subject")["seconds"]
        out = states.set_index("scan").join(wide).join(seconds.rename("seconds"))
        out = out.reset_index(names="scan")
        for col in ("ingest", "segment"):
            if col not in out:
                out[col] = None
        ids = pd.DataFrame([identity(k) for k in out["scan"]], columns=list(ID_COLUMNS))
        out = pd.concat([ids, out.drop(columns="scan")], axis=1)
        cols = [*ID_COLUMNS, "ingest", "segment", "state", "phase", "step", "error", "seconds"]
        return self._joined(out[cols])

    def participants(self) -> pd.DataFrame:
        """The cohort's ``participants.tsv`` (copied at ingest) with ``subject`` for
        ``participant_id``; an empty frame when the cohort has none."""
        raw = self.store.read_root_file(PARTICIPANTS)
        if raw is None:
            return pd.DataFrame(columns=["subject"])
        table = pd.read_csv(io.BytesIO(raw), sep="\t", na_values=["n/a"], keep_default_na=False)
        return table.rename(columns={"participant_id": "subject"})

    def _joined(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with the participants' columns (age, sex, ...) joined on ``subject``."""
        people = self.participants()
        extra = [c for c in people.columns if c == "subject" or c not in table.columns]
        if len(people) == 0 or len(table) == 0:
            return table
        return table.merge(people[extra], on="subject", how="left")

    def volume(self, subject: str, name: str, *, anatomical: bool = True) -> Any:
        """Lazy ``xr.DataArray`` of one volume, coordinates in mm.

        Dims ``(superior, anterior, right)`` (`ANATOMICAL_DIMS`): each dim named for the way
        its coordinate grows (RAS+ world mm), whatever order the scan was stored in, so
        ``isel(right=k)`` is a sagittal slice, ``isel(anterior=k)`` coronal and
        ``isel(superior=k)`` axial. Nothing is read or copied: the stored array is only
        transposed and flipped. ``anatomical=False``: the stored array, dims ``(z, y, x)`` =
        NIfTI voxel axes ``(k, j, i)`` (the store's layout).
        """
        da = self.store.open_xarray(subject, name)
        return to_anatomical(da) if anatomical else da

    def dataset(self, subject: str) -> Any:
        """``xr.Dataset`` with the image and whichever masks exist, on one grid with dims
        ``(superior, anterior, right)`` (see `volume`)."""
        import xarray as xr

        names = [n for n in (IMAGE, SEMANTIC, INSTANCE) if self.store.has_volume(subject, n)]
        return xr.Dataset({n: self.volume(subject, n) for n in names})

    def snapshot(self, subject: str) -> bytes:
        """The PNG the run made for ``subject`` (IPython: ``Image(cohort.snapshot(s))``)."""
        return self.store.read_blob(subject, SNAPSHOT)

    def table(self, kind: str, *, participants: bool = True) -> pd.DataFrame:
        """``'metrics'`` or ``'biomarkers'`` of every scan that has them, concatenated.

        Rows carry ``scan`` (the key), ``subject`` and ``session``, then the participants'
        columns from ``participants.tsv`` where the cohort has one (``participants=False``
        leaves them out: summaries group by every extra column).
        """
        parts = []
        for subject in self.subjects:
            try:
                blob = self.store.read_blob(subject, TABLES[kind])
            except StoreError:  # a subject without the table simply has none
                continue
            parts.append(_with_identity(table_from_bytes(blob), subject))
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return self._joined(table) if participants else table


#: Dims of `Cohort.volume` and `Cohort.dataset`: each named for the way its coordinate grows.
ANATOMICAL_DIMS: tuple[str, str, str] = ("superior", "anterior", "right")
_WORLD_DIMS = ("right", "anterior", "superior")  # RAS+ world axes 0, 1, 2


def to_anatomical(da: Any) -> Any:
    """A stored ``(z, y, x)`` volume as ``(superior, anterior, right)``, coordinates in RAS+ mm.

    Each voxel axis goes to the world axis it runs closest to (nibabel's ``io_orientation``
    of the affine); an axis running left, posterior or inferior is flipped, its coordinates
    negated, so every coordinate increases along its dim. Lazy: no voxel is read.
    """
    from nibabel.orientations import io_orientation

    ornt = io_orientation(np.asarray(da.attrs["affine"], dtype=float))
    stored = {0: "x", 1: "y", 2: "z"}  # NIfTI voxel axis i, j, k -> stored dim
    for axis, (world, flip) in enumerate(ornt):
        dim, new = stored[axis], _WORLD_DIMS[int(world)]
        coord = da[dim].values * flip
        da = da.assign_coords({dim: coord}).rename({dim: new})
        if flip < 0:
            da = da.isel({new: slice(None, None, -1)})
        da[new].attrs["units"] = "mm"
    da = da.transpose(*ANATOMICAL_DIMS)
    da.attrs["axes"] = "superior, anterior, right: RAS+ world mm, whatever the stored order"
    return da


def _with_identity(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """A stored table written before tables carried ``scan`` and ``session`` gets them."""
    if "scan" in table.columns:
        return table
    table = table.drop(columns=["subject"], errors="ignore")
    for i, (col, value) in enumerate(identity(key).items()):
        table.insert(i, col, pd.Series([value] * len(table), dtype="object"))
    return table


def open_cohort(url: str | os.PathLike, *, storage_options: dict | None = None) -> Cohort:
    """Open a cohort store (local folder or ``s3://`` URL) for reading."""
    return Cohort(CohortStore(url, mode="r", storage_options=storage_options))
