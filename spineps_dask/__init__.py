"""spineps-dask: the SPINEPS whole-spine MRI segmentation method as a distributed batch system."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Cohort", "__version__", "open_cohort"]


def __getattr__(name: str) -> Any:
    # Lazy, so `spineps-dask --help` does not pay for zarr/pandas imports.
    if name in ("Cohort", "open_cohort"):
        from spineps_dask import explore

        return getattr(explore, name)
    raise AttributeError(f"module 'spineps_dask' has no attribute {name!r}")
