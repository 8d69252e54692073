"""Which subjects a run takes: done ones are skipped only while the models and settings, known
by content, are those that made them."""

from __future__ import annotations

import shutil

import numpy as np

from spineps_dask.config import DEMO_MODELS, RunConfig
from spineps_dask.distributed.outcomes import SubjectOutcome
from spineps_dask.distributed.resume import outcome_rows, select_subjects
from spineps_dask.geometry import Volume
from spineps_dask.io.manifest import make_row
from spineps_dask.io.store import CohortStore

AFFINE = np.diag([1.2, 1.2, 4.0, 1.0])


def _done_store(tmp_path, cfg: RunConfig) -> CohortStore:
    """A store with one subject finished by ``cfg``: image, both masks, ok rows."""
    store = CohortStore(tmp_path / "store.zarr")
    vol = Volume(np.ones((16, 12, 8), np.uint8), AFFINE)
    for name in ("image", "semantic", "instance"):
        store.write_volume("sub-001", name, vol)
    common = {"run_id": "r1", "config": cfg.fingerprint(), "models": cfg.model_versions()}
    outcome = SubjectOutcome("sub-001", "done", timings={"wall": 1.0})
    store.manifest.upsert(
        [make_row("sub-001", "ok"), *outcome_rows(outcome, common=common)],
    )
    return store


def test_a_model_edited_in_place_reprocesses_the_subjects_it_made(tmp_path):
    """A subject done with the instance model is skipped; after the model's weights are
    edited in place (same file name and size, new content) the same command takes it again."""
    folder = tmp_path / "instance"
    shutil.copytree(DEMO_MODELS / "instance", folder)
    cfg = RunConfig(instance_model=folder)
    store = _done_store(tmp_path, cfg)
    assert select_subjects(store, store.manifest, cfg) == ([], ["sub-001"])
    (ckpt,) = folder.glob("*.ckpt")
    blob = bytearray(ckpt.read_bytes())
    blob[-100] ^= 0x01  # one bit of one weight: retrained, as far as the files tell
    ckpt.write_bytes(bytes(blob))
    assert select_subjects(store, store.manifest, cfg) == (["sub-001"], [])
