"""A subject whose task raises past its retries (a transient I/O error that did not pass: a
disk that stayed full) ends without a task of its own to drop its work arrays; the runner
drops them (issue 18: failed subjects leave no work arrays). Stand-in tasks on an in-process
cluster: this is about what the runner does when a task raises, not about the pipeline."""

from __future__ import annotations

import errno

import numpy as np

from spineps_dask.config import RunConfig
from spineps_dask.distributed import tasks
from spineps_dask.distributed.outcomes import StageResult
from spineps_dask.distributed.runner import run_cohort
from spineps_dask.geometry import Volume
from spineps_dask.io.names import RUN_WORK
from spineps_dask.io.store import CohortStore
from tests.clusters import in_process_client


def test_a_task_that_raised_past_its_retries_leaves_no_work_arrays(tmp_path, monkeypatch):
    store = CohortStore(tmp_path / "store.zarr")
    vol = Volume(np.ones((16, 12, 8), np.int16), np.diag([1.0, 1.0, 3.0, 1.0]))
    store.write_volume("sub-001", "image", vol)

    def prepare(store, subject, cfg):  # parks its array, as the real one does
        store.write_volume(subject, RUN_WORK.prepared, vol)
        return StageResult(subject, {}, {}).then("prepare", 0.0)

    def semantic(store, subject, prev, cfg):  # the disk stays full: raised, not a Failure
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tasks, "prepare", prepare)
    monkeypatch.setattr(tasks, "semantic", semantic)
    with in_process_client() as client:
        (outcome,) = run_cohort(client, store, ["sub-001"], RunConfig(), retries=1)
    assert outcome.status == "failed" and outcome.step == "semantic", outcome
    assert "No space left" in outcome.error
    assert store.volumes("sub-001") == ["image"]
