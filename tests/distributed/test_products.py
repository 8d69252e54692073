"""The reduce step's products: chosen by the run settings, each written by its own writer."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import Guard
from spineps_dask.distributed.products import (
    centroid_attr,
    products_for,
    write_masks,
    write_metrics,
)
from spineps_dask.errors import StoreError
from spineps_dask.geometry import Volume
from spineps_dask.io.store import CohortStore
from spineps_dask.pipeline.segment import Segmentation


def _names(cfg: RunConfig) -> list[str]:
    return [w.__name__ for w in products_for(cfg)]


def test_settings_choose_the_writers():
    assert _names(RunConfig()) == [
        "write_masks",
        "write_snapshot",
        "write_biomarkers",
        "write_metrics",
    ]
    assert _names(RunConfig(snapshot=False, metrics=False)) == ["write_masks", "write_biomarkers"]


@pytest.fixture
def finished(tmp_path):
    """A tiny assembled subject and an empty store (no reference masks)."""
    sem = np.zeros((4, 5, 6), np.uint8)
    sem[1:3, 1:4, 2:4] = 49
    inst = np.where(sem > 0, 20, 0).astype(np.uint16)
    seg = Segmentation(
        Volume(sem, np.eye(4)), Volume(inst, np.eye(4)), {20: (1.5, 2.0, 2.5)}, "sacrum", 1
    )
    return CohortStore(tmp_path / "store.zarr"), seg


def test_masks_carry_centroids_and_provenance(finished):
    store, seg = finished
    cfg = RunConfig()
    with Guard("sub-001", "reduce") as g:
        write_masks(g, store, "sub-001", seg, cfg)
    assert g.failure is None and g.io > 0
    assert store.volumes("sub-001") == ["instance", "semantic"]
    attrs = store.read_attrs("sub-001", "instance")
    assert attrs["centroids"] == {"20": [1.5, 2.0, 2.5]}
    assert (attrs["anchor"], attrs["config"]) == ("sacrum", cfg.fingerprint())
    np.testing.assert_array_equal(store.read_volume("sub-001", "semantic").data, seg.semantic.data)


def test_metrics_only_for_subjects_with_references(finished):
    store, seg = finished
    with Guard("sub-001", "reduce") as g:
        write_metrics(g, store, "sub-001", seg, RunConfig())
    with pytest.raises(StoreError, match=r"no 'metrics\.parquet'"):
        store.read_blob("sub-001", "metrics.parquet")


def test_centroids_are_json_able_voxel_positions_in_label_order():
    assert centroid_attr({20: (1.23456, 2.0, 3.0), 3: (0, 0, 0)}) == {
        "3": [0.0, 0.0, 0.0],
        "20": [1.235, 2.0, 3.0],
    }
