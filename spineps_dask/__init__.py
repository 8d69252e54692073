"""spineps-dask: the SPINEPS whole-spine MRI segmentation method as a distributed batch system.

``run_batch(store, RunConfig(...))`` runs a cohort (what ``spineps-dask run`` does);
``open_cohort(store)`` browses the result in a notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spineps_dask.batch import run_batch
    from spineps_dask.config import RunConfig
    from spineps_dask.distributed.resume import RunSummary
    from spineps_dask.explore import Cohort, open_cohort

from spineps_dask._version import __version__

__all__ = ["Cohort", "RunConfig", "RunSummary", "__version__", "open_cohort", "run_batch"]

#: Where each public name lives; imported on first use.
_LAZY = {
    "Cohort": "spineps_dask.explore",
    "open_cohort": "spineps_dask.explore",
    "RunConfig": "spineps_dask.config",
    "run_batch": "spineps_dask.batch",
    "RunSummary": "spineps_dask.distributed.resume",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `spineps-dask --help` does not pay for zarr/pandas/distributed imports.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spineps_dask' has no attribute {name!r}")
