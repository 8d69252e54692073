"""The cohort runner on real `distributed` worker processes with the shipped demo models.

Protects: cluster outputs equal the single-process `segment` path voxel for voxel, vertebra
naming by the labelling model included (its own model task); models load once per worker; the
manifest says how each subject was named; a bad scan fails alone; an interrupted run resumes
without redoing finished subjects; a worker killed mid-run does not change the result.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache, outcomes
from spineps_dask.distributed.resume import run_store
from spineps_dask.distributed.runner import RunEvents
from spineps_dask.explore import open_cohort
from spineps_dask.geometry import Volume
from spineps_dask.io.cohort import ingest
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.io.references import ingest_references
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort
from spineps_dask.pipeline.naming import NamingSettings
from spineps_dask.pipeline.segment import segment
from tests.labeling_model import labeling_folder

# Named by a labelling model (an untrained one, named explicitly: the test is of the paths, not
# the shipped weights), so the label task runs on the cluster and is compared with `segment`.
CFG = RunConfig(n4=False, cutouts_per_task=2, snapshot=True, labeling_model=labeling_folder())
GOOD = ["sub-001", "sub-002"]
BAD = "sub-axial"


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    """Two small lumbar phantoms plus one axial scan that ingests but cannot be segmented."""
    root = tmp_path_factory.mktemp("cohort") / "bids"
    write_bids_cohort(root, subjects=2, seed=900, region="lumbar")
    src = load_volume(root / "sub-001" / "anat" / "sub-001_T2w.nii.gz")
    axial = np.eye(4)
    axial[:3, :3] = np.diag([0.8, 0.8, 4.0])  # thick slices along S-I: an axial stack
    save_volume(Volume(src.data, axial), root / BAD / "anat" / f"{BAD}_T2w.nii.gz")
    return root


@pytest.fixture(scope="module")
def client(model_workers):
    with model_workers(2) as client:
        yield client


def _fresh_store(bids, path):
    if path.exists():
        shutil.rmtree(path)
    ingest(bids, str(path))
    store = CohortStore(str(path), mode="a")
    ingest_references(bids / GROUNDTRUTH, store)
    return store


@pytest.fixture(scope="module")
def finished(bids, client, tmp_path_factory):
    store = _fresh_store(bids, tmp_path_factory.mktemp("run") / "store.zarr")
    summary = run_store(client, store, CFG)
    return store, summary


def test_cluster_equals_single_process(bids, finished):
    """The distributed graph and `segment` give identical masks for every subject."""
    store, summary = finished
    # Same torch thread count as the workers: CPU convolutions sum in a thread-dependent order,
    # which can flip an argmax tie (seen: 1 voxel in 2 million at 2 vs 1 threads).
    model_cache.set_threads(1)
    sem_model = model_cache.semantic_model(CFG.semantic_model)
    inst_model = model_cache.instance_model(CFG.instance_model)
    lab_model = model_cache.labeling_model(CFG.labeling_model)
    naming = NamingSettings(method=CFG.naming)
    for subject in GOOD:
        image = load_volume(bids / subject / "anat" / f"{subject}_T2w.nii.gz")
        ref = segment(
            image,
            sem_model,
            inst_model,
            n4=CFG.n4,
            subject=subject,
            labeling_model=lab_model,
            naming=naming,
        )
        for name, vol in (("semantic", ref.semantic), ("instance", ref.instance)):
            got = store.read_volume(subject, name)
            np.testing.assert_array_equal(got.data, vol.data, err_msg=f"{subject} {name}")
            np.testing.assert_allclose(got.affine, image.affine)
    assert {o.subject for o in summary.done} == set(GOOD)


def test_naming_is_recorded(finished):
    """Every finished subject ran the label stage and its segment row says how it was named
    (method, confidence, flag); the instance mask carries the same, per vertebra too."""
    store, summary = finished
    rows = Manifest(store.manifest_url).rows(phase="segment")
    for outcome in summary.done:
        assert "label" in outcome.timings
        row = rows[outcome.subject]
        assert row["naming"] == CFG.naming
        assert 0.0 <= row["naming_confidence"] <= 1.0
        assert row["naming_low_confidence"] in (True, False)
        attrs = store.read_attrs(outcome.subject, "instance")["naming"]
        assert attrs["naming"] == CFG.naming and attrs["vertebra_confidence"]


def test_reduce_writes_tables_and_snapshots(finished):
    """Each finished subject has its metric rows (references were ingested), per-level
    biomarkers and a snapshot; a notebook sees them through `open_cohort`."""
    store, _ = finished
    cohort = open_cohort(store.url)
    metrics = cohort.table("metrics")
    assert set(metrics.subject) == set(GOOD)
    assert {"DSC", "PQ"} <= set(metrics.metric)
    bio = cohort.table("biomarkers")
    assert set(bio.subject) <= set(GOOD) and {"body", "disc"} <= set(bio.structure)
    assert cohort.snapshot(GOOD[0])[:4] == b"\x89PNG"
    status = cohort.status().set_index("scan")
    assert status.loc[BAD, "segment"] == "failed"
    ds = cohort.dataset(GOOD[0])
    assert {"image", "semantic", "instance"} <= set(ds.data_vars)


def test_timings_keep_store_io_apart(finished):
    """Every finished subject reports the seconds its tasks spent on store reads and writes,
    a positive part of its phase seconds (the benchmark's I/O overhead figure reads this)."""
    _, summary = finished
    for outcome in summary.done:
        phases = sum(outcome.timings.get(p, 0.0) for p in outcomes.PHASES)
        assert 0 < outcome.timings[outcomes.STORE_IO] < phases, outcome.timings


def test_bad_scan_is_one_failed_row(finished):
    """An axial scan fails with a reason naming the problem; nobody else is lost."""
    store, summary = finished
    (bad,) = summary.failed
    assert bad.subject == BAD and bad.step == "prepare"
    assert "axial" in bad.error.lower()
    rows = Manifest(store.manifest_url).rows(phase="segment")
    assert rows[BAD]["status"] == "failed"
    assert all(rows[s]["status"] == "ok" for s in GOOD)
    assert not store.has_volume(BAD, "instance")


def test_models_load_once_per_worker(client, finished):
    """Each worker process loaded each model at most once for the whole cohort."""
    counts = client.run(model_cache.load_counts)
    assert counts, "no worker answered"
    for worker, c in counts.items():
        assert all(c.get(k, 0) <= 1 for k in ("semantic", "instance", "labeling")), (worker, c)
    assert sum(c.get("semantic", 0) for c in counts.values()) >= 1


def test_rerun_skips_done_subjects(client, finished):
    """Resume: done subjects are skipped; the failed one is tried again (and fails again)."""
    store, _ = finished
    again = run_store(client, store, CFG)
    assert sorted(again.skipped) == GOOD
    assert [o.subject for o in again.outcomes] == [BAD]


class _CountCutouts(RunEvents):
    def __init__(self):
        self.cutouts = 0

    def cutouts_planned(self, n):
        self.cutouts += n


def test_references_added_after_a_run_are_scored_without_a_model(bids, client, finished, tmp_path):
    """Issue 21 item 4: references ingested after the subjects were segmented are scored by
    the next run as a step of its own (no cutout, masks not rewritten); the run after that
    scores nothing; a changed reference is scored again, alone."""
    done, _ = finished
    shutil.copytree(done.url, tmp_path / "store.zarr")
    store = CohortStore(str(tmp_path / "store.zarr"), mode="a")
    for subject in GOOD:  # as if the references had never been there
        for name in ("ref_semantic", "ref_instance"):
            store.delete_volume(subject, name)
        (tmp_path / "store.zarr" / subject / "metrics.parquet").unlink()
    store.manifest.compact()  # every row in the base file, so rewriting it drops them all
    rows = Manifest(store.manifest_url).read()
    rows[rows.phase != "score"].to_parquet(store.manifest_url, index=False)
    written = {s: store.read_attrs(s, "instance") for s in GOOD}
    assert open_cohort(store.url).table("metrics").empty
    found = ingest_references(bids / GROUNDTRUTH, store)
    assert sorted(found["ingested"]) == GOOD

    events = _CountCutouts()
    late = run_store(client, store, CFG, events=events)
    assert sorted(o.subject for o in late.scored) == GOOD and not late.done
    assert events.cutouts == 0 and written == {s: store.read_attrs(s, "instance") for s in GOOD}
    assert set(open_cohort(store.url).table("metrics").scan) == set(GOOD)
    assert not run_store(client, store, CFG).scored  # scored once

    ref = store.read_volume(GOOD[0], "ref_semantic")
    src, dst = bids / GROUNDTRUTH / GOOD[0] / "anat", tmp_path / "refs" / GOOD[0] / "anat"
    changed = ref.with_data(np.where(ref.data == 49, 0, ref.data).astype(ref.data.dtype))
    save_volume(changed, dst / f"{GOOD[0]}_mod-T2w_seg-spine_msk.nii.gz")
    shutil.copy(src / f"{GOOD[0]}_mod-T2w_seg-vert_msk.nii.gz", dst)
    assert ingest_references(tmp_path / "refs", store)["ingested"] == [GOOD[0]]
    again = run_store(client, store, CFG)
    assert [o.subject for o in again.scored] == [GOOD[0]]


class _StopAfterFirst(RunEvents):
    def subject_finished(self, outcome):
        raise KeyboardInterrupt  # what Ctrl-C in the driver looks like


def test_interrupted_run_resumes_without_redoing_work(bids, client, tmp_path):
    store = _fresh_store(bids, tmp_path / "store.zarr")
    with pytest.raises(KeyboardInterrupt):
        run_store(client, store, CFG, events=_StopAfterFirst(), max_in_flight=1)
    first = Manifest(store.manifest_url).rows(phase="segment")
    assert len(first) == 1, "the finished subject was not written before stopping"
    (done_subject,) = first
    resumed = run_store(client, store, CFG)
    assert done_subject in resumed.skipped or first[done_subject]["status"] == "failed"
    processed = {o.subject for o in resumed.outcomes}
    assert done_subject not in processed
    assert processed | set(resumed.skipped) == {*GOOD, BAD}


def test_worker_killed_mid_run(bids, client, finished, tmp_path):
    """Kill a worker process while subjects are in flight: same masks as the undisturbed run."""
    reference, _ = finished
    store = _fresh_store(bids, tmp_path / "store.zarr")
    victim = sorted(client.scheduler_info()["workers"])[0]

    def kill_soon():
        time.sleep(3.0)
        client.run(os._exit, 1, workers=[victim], wait=False)

    threading.Thread(target=kill_soon, daemon=True).start()
    summary = run_store(client, store, CFG, retries=3)
    assert {o.subject for o in summary.done} == set(GOOD)
    for subject in GOOD:
        np.testing.assert_array_equal(
            store.read_volume(subject, "instance").data,
            reference.read_volume(subject, "instance").data,
        )
    client.wait_for_workers(2, timeout=60)
