"""Parameter sweeps: a grid of settings over a cohort, sharing the work a setting does not change.

:mod:`.config` reads and checks the YAML, :mod:`.settings` keys each stage by the settings it
depends on, :mod:`.driver` runs the grid on a Dask cluster, :mod:`.tables` and :mod:`.plot`
build the outputs, :mod:`.execute` ties them together (the ``sweep`` command).
"""

from spineps_dask.sweep.config import SweepConfig, SweepConfigError
from spineps_dask.sweep.driver import SweepEvents, run_grid, stage_counts
from spineps_dask.sweep.execute import resolve_grid, run_sweep
from spineps_dask.sweep.plot import plot_sweep
from spineps_dask.sweep.results import SweepResult
from spineps_dask.sweep.settings import Setting

__all__ = [
    "Setting",
    "SweepConfig",
    "SweepConfigError",
    "SweepEvents",
    "SweepResult",
    "plot_sweep",
    "resolve_grid",
    "run_grid",
    "run_sweep",
    "stage_counts",
]
