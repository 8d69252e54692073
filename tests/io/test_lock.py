"""The run lock: one run per store at a time."""

from __future__ import annotations

import pytest

from spineps_dask.errors import StoreError
from spineps_dask.io.lock import run_lock
from spineps_dask.io.store import CohortStore


def test_second_run_on_the_same_store_refuses(tmp_path):
    """Two runs on one store: the second stops at once with a message, the first is untouched."""
    store = CohortStore(str(tmp_path / "store.zarr"))
    with run_lock(store), pytest.raises(StoreError, match="another run is using"), run_lock(store):
        pass
    with run_lock(store):  # released: the next run may go
        pass
