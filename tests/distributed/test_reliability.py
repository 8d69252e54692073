"""Nothing silently wrong, with real worker processes and the shipped models (issue 18).

Protects: a second driver and a plain ingest started during a run are refused before they
touch a scan the run is segmenting, so every mask matches its scan, and the refused driver
runs cleanly afterwards; a truncated, a flipped and a deleted chunk each become a failed row
that the next run recomputes, to the same masks as before; an unexpected error in ``prepare``
is reported in ``prepare``, once, without Dask's retries. No command prints a traceback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from distributed.diagnostics.plugin import WorkerPlugin

from spineps_dask.batch import run_batch
from spineps_dask.config import RunConfig
from spineps_dask.distributed.resume import run_store, select_subjects
from spineps_dask.errors import DamagedVolumeError
from spineps_dask.geometry import Volume
from spineps_dask.io.cohort import ingest
from spineps_dask.io.export import export
from spineps_dask.io.integrity import verify_store
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import write_bids_cohort

CFG = RunConfig(n4=False, cutouts_per_task=4, snapshot=False, metrics=False)
SUBJECTS = ["sub-001", "sub-002"]
ROOT = Path(__file__).resolve().parents[2]
SCAN = "{s}/anat/{s}_T2w.nii.gz"


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """Two small cervical phantoms (``bids``) and the same cohort with sub-001's scan
    re-exported with 4 sagittal slices fewer (``changed``): a new checksum and a new shape."""
    root = tmp_path_factory.mktemp("reliability")
    bids, changed = root / "bids", root / "changed"
    write_bids_cohort(
        bids, subjects=2, seed=910, region="cervical", orientation=("P", "I", "R"),
        spacing=(1.2, 1.2, 4.0),
    )  # fmt: skip
    shutil.copytree(bids, changed)
    scan = load_volume(changed / SCAN.format(s="sub-001"))
    save_volume(
        Volume(scan.data[:, :, 2:-2].copy(), scan.affine), changed / SCAN.format(s="sub-001")
    )
    return bids, changed


@pytest.fixture(scope="module")
def client(model_workers):
    with model_workers(2) as client:
        yield client


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "spineps_dask.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _masks_match_scans(store: CohortStore, bids: Path) -> None:
    """Every subject's masks lie on its stored scan's grid, and that scan is the cohort's."""
    for subject in SUBJECTS:
        image = store.read_attrs(subject, "image")
        assert image["sha256"] == _sha256(bids / SCAN.format(s=subject)), subject
        for name in ("semantic", "instance"):
            assert store.read_attrs(subject, name)["shape"] == image["shape"], (subject, name)


@pytest.fixture(scope="module")
def raced(cohorts, client, tmp_path_factory):
    """Driver A runs ``bids`` (in this process, on the module's workers); while it holds the
    store, driver B (``run -i changed``) and a plain ``ingest changed`` start as processes of
    their own. Returns the store and what B and the ingest printed."""
    bids, changed = cohorts
    url = tmp_path_factory.mktemp("raced") / "store.zarr"
    outcome: dict = {}

    def driver_a() -> None:
        try:
            outcome["summary"] = run_batch(url, CFG, bids=bids, client=client)
        except BaseException as exc:  # reported by the test, not lost in the thread
            outcome["error"] = exc

    a = threading.Thread(target=driver_a)
    a.start()
    deadline = time.monotonic() + 60
    lock = url / ".run.lock"
    while not (lock.is_file() and lock.read_text().startswith("run pid")):
        assert time.monotonic() < deadline and a.is_alive(), outcome
        time.sleep(0.2)
    # Both late-comers start together: each spends seconds importing before it reaches the
    # lock, and one after the other they could outlast driver A on a loaded machine.
    with ThreadPoolExecutor(2) as pool:
        second_f = pool.submit(
            _cli, "run", str(url), "-i", str(changed), "--no-n4", "--workers", "1"
        )
        plain_f = pool.submit(_cli, "ingest", str(changed), str(url))
        second, plain = second_f.result(), plain_f.result()
    a_was_running = a.is_alive()
    a.join(timeout=600)
    assert "error" not in outcome, outcome
    return CohortStore(url), second, plain, a_was_running, outcome["summary"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_second_driver_and_an_ingest_during_a_run_are_refused(cohorts, raced):
    """Both late-comers stop at once with a one-line message naming the run that holds the
    store (exit code 2, no traceback); the run finishes both subjects and every mask it
    wrote lies on the grid of the scan it was computed from, which is still the cohort's."""
    bids, _ = cohorts
    store, second, plain, a_was_running, summary = raced
    assert a_was_running, "driver A ended before the others started: nothing was raced"
    for proc in (second, plain):
        text = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode == 2, text[-2000:]
        assert "another run is using" in text and "(run pid" in text
        assert "Traceback" not in text
    assert sorted(o.subject for o in summary.done) == SUBJECTS
    _masks_match_scans(store, bids)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_damaged_chunks_become_failed_rows_that_the_next_run_recomputes(raced, client, tmp_path):
    """A truncated and a deleted chunk (sub-001) and a flipped one (sub-002): the quick check
    on skipping finds the first two, ``verify`` all three; export writes no damaged file and
    marks both subjects failed; the next run recomputes exactly them, to the same masks."""
    # Imported here: workers unpickle this module's plugin, and `tests` may not be this
    # checkout's package on their path (tests/conftest.py, `model_workers`).
    from tests.io.damage import damage_chunk

    url = tmp_path / "store.zarr"
    shutil.copytree(raced[0].url, url)
    store = CohortStore(url)
    before = {
        (s, n): store.read_volume(s, n).data for s in SUBJECTS for n in ("semantic", "instance")
    }
    damage_chunk(url, "sub-001", "semantic", "truncated")
    damage_chunk(url, "sub-001", "instance", "deleted")
    damage_chunk(url, "sub-002", "semantic", "flipped")
    assert select_subjects(store, store.manifest, CFG) == (["sub-001"], ["sub-002"])
    assert select_subjects(store, store.manifest, CFG, verify=True) == (SUBJECTS, [])
    with pytest.raises(DamagedVolumeError, match=r"2 subject\(s\) .*\(sub-001, sub-002;"):
        export(url, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.nii.gz"))
    rows = Manifest(store.manifest_url).rows(phase="segment")
    assert [rows[s]["status"] for s in SUBJECTS] == ["failed", "failed"]
    assert all(rows[s]["step"] == "verify" for s in SUBJECTS)
    again = run_store(client, store, CFG)
    assert sorted(o.subject for o in again.done) == SUBJECTS and not again.skipped
    for (subject, name), data in before.items():
        np.testing.assert_array_equal(store.read_volume(subject, name).data, data)
    assert verify_store(store).damaged == {}
    written = export(url, tmp_path / "out")
    per_subject = [p for p in written if p.parent.name == "anat"]
    assert len(per_subject) == 6  # two masks and centroids each
    # and the folder's BIDS derivatives files (issue 21): the description, participants.tsv
    assert {p.name for p in written} - {p.name for p in per_subject} == {
        "dataset_description.json",
        "participants.tsv",
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_refused_driver_runs_cleanly_afterwards(cohorts, raced, client, tmp_path):
    """Driver B's command, run once A is done: the changed scan is ingested again, its
    subject segmented again (the other is skipped), and every mask, in the store and
    exported, lies on its scan's grid."""
    _, changed = cohorts
    store = raced[0]
    summary = run_batch(store.url, CFG, bids=changed, client=client, export=tmp_path / "out")
    assert [o.subject for o in summary.done] == ["sub-001"] and summary.skipped == ["sub-002"]
    _masks_match_scans(store, changed)
    for subject in SUBJECTS:
        scan_shape = nib.load(changed / SCAN.format(s=subject)).shape
        (mask,) = (tmp_path / "out").rglob(f"{subject}_*seg-vert_msk.nii.gz")
        assert nib.load(mask).shape == scan_shape


class PrepareFails(WorkerPlugin):
    """Test-only fault at the step boundary: ``prepare`` of one subject raises the error ITK
    raised on a broken scan; every call is counted in a file (retries would add lines)."""

    name = "test-prepare-fails"

    def __init__(self, subject: str, calls: str) -> None:
        self.subject, self.calls = subject, calls

    def setup(self, worker) -> None:
        from spineps_dask.distributed import steps

        original = self.original = steps.prepare_image

        def prepare_image(image, *, subject, **kwargs):
            if subject == self.subject:
                with open(self.calls, "a") as fh:
                    fh.write("call\n")
                raise RuntimeError("ITK ERROR: Zero-valued spacing is not supported")
            return original(image, subject=subject, **kwargs)

        steps.prepare_image = prepare_image

    def teardown(self, worker) -> None:
        from spineps_dask.distributed import steps

        steps.prepare_image = self.original


@pytest.mark.timeout(300)
def test_an_unexpected_error_in_prepare_is_reported_there_once(cohorts, client, tmp_path):
    """A library error in ``prepare`` (here ITK's on a scan it cannot handle) fails the
    subject in ``prepare``, not in the step that was waiting for it, with the error's type,
    message and place, after one try: another would fail the same way."""
    bids, _ = cohorts
    ingest(bids, tmp_path / "store.zarr")
    store = CohortStore(tmp_path / "store.zarr")
    calls = tmp_path / "calls.txt"
    client.register_plugin(PrepareFails("sub-001", str(calls)))
    try:
        start = time.perf_counter()
        summary = run_store(client, store, CFG, subjects=["sub-001"], retries=2)
        seconds = time.perf_counter() - start
    finally:
        client.unregister_worker_plugin(PrepareFails.name)
    (failed,) = summary.failed
    assert failed.step == "prepare"
    assert failed.error.startswith(
        "unexpected error in prepare: RuntimeError: ITK ERROR: Zero-valued spacing"
    )
    assert "not retried" in failed.error
    assert calls.read_text().count("call") == 1
    assert seconds < 60
    rows = Manifest(store.manifest_url)
    assert rows.rows(phase="segment")["sub-001"]["step"] == "prepare"
    assert rows.rows(phase="prepare")["sub-001"]["status"] == "failed"
    assert not (tmp_path / "store.zarr/sub-001/work_prepared").exists()
