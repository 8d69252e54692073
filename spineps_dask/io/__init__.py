"""All file access: NIfTI, BIDS names, the Zarr cohort store, the manifest.

The store's vocabulary lives here too: `names` (every name a store holds), `atomic` (the one
atomic file write), `tables` (Parquet), `lock` (one run per store).
"""

from spineps_dask.io.bids import ScanName, parse_scan_name, validate_subject_key
from spineps_dask.io.cohort import (
    IngestSummary,
    Scan,
    discover_scans,
    ingest,
    ingest_scan,
    sha256sum,
)
from spineps_dask.io.export import export
from spineps_dask.io.manifest import Manifest, make_row
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.io.store import CohortStore, VolumeKey
from spineps_dask.io.validate import ScanLimits, validate_scan

__all__ = [
    "CohortStore",
    "IngestSummary",
    "Manifest",
    "Scan",
    "ScanLimits",
    "ScanName",
    "VolumeKey",
    "discover_scans",
    "export",
    "ingest",
    "ingest_scan",
    "load_volume",
    "make_row",
    "parse_scan_name",
    "save_volume",
    "sha256sum",
    "validate_scan",
    "validate_subject_key",
]
