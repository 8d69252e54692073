"""Expected failures on the console: one line each, never a traceback (issue 18, item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spineps_dask.io.cohort import ingest
from spineps_dask.io.manifest import Manifest
from spineps_dask.phantom.cohort import write_bids_cohort

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_on_a_full_disk_says_so_in_lines_not_tracebacks(small_disk, tmp_path):
    """``spineps-dask run`` on a store whose disk is full: each subject fails in one line
    naming the disk, the run ends with exit code 2 and one line saying what to do; nothing
    on stdout or stderr is a traceback (the workers' included), and no work array is left."""
    bids = tmp_path / "bids"
    write_bids_cohort(
        bids, subjects=2, seed=910, region="cervical", orientation=("P", "I", "R"),
        spacing=(1.2, 1.2, 4.0),
    )  # fmt: skip
    url = small_disk.path / "store.zarr"
    ingest(bids, url)
    before = Manifest(url / "manifest.parquet").read()
    small_disk.fill()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "spineps_dask.cli", "run", str(url), "--no-n4", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    assert "Traceback" not in text, text
    assert "store problem: cannot write the manifest" in " ".join(text.split())
    for subject in ("sub-001", "sub-002"):
        lines = [line for line in proc.stderr.splitlines() if f"{subject} failed in" in line]
        assert lines and all("No space left on device" in line for line in lines), subject
    assert Manifest(url / "manifest.parquet").read().equals(before)
    assert not list(url.glob("sub-*/work_*"))


def test_run_verify_checks_every_voxel_of_what_it_skips(tmp_path, monkeypatch):
    """``run --verify`` asks `run_batch` for the full check of finished subjects; without the
    flag the run makes the quick one."""
    from typer.testing import CliRunner

    from spineps_dask import batch
    from spineps_dask.cli import app
    from spineps_dask.distributed.resume import RunSummary

    seen: list[bool] = []

    def stand_in_run_batch(store, cfg, *, verify=False, **options):
        seen.append(verify)
        return RunSummary("stand-in", [], [], 0.0)

    monkeypatch.setattr(batch, "run_batch", stand_in_run_batch)
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(tmp_path / "s.zarr"), "--verify"]).exit_code == 0
    assert runner.invoke(app, ["run", str(tmp_path / "s.zarr")]).exit_code == 0
    assert seen == [True, False]
