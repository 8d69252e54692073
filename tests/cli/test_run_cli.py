"""``spineps-dask run`` from the command line: what it refuses before any work, in one line
and with the documented exit code (README, "Exit codes")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from spineps_dask.cli import app

runner = CliRunner()


def test_run_on_a_store_that_does_not_exist_exits_2_and_creates_nothing(tmp_path):
    """Issue 21 item 2: a typo in the store path creates no empty store, starts no cluster."""
    result = runner.invoke(app, ["run", str(tmp_path / "nostore.zarr")])
    assert result.exit_code == 2, result.output
    assert "no cohort store at" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nostore.zarr").exists()


def _store(tmp_path):
    from spineps_dask.io.store import CohortStore

    CohortStore(tmp_path / "c.zarr", mode="a")
    return str(tmp_path / "c.zarr")


def _one_line_error(result) -> str:
    """The error printed, checked to be short: no traceback, no wall of text."""
    assert "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) <= 4, result.output
    return " ".join(result.output.split())


def test_a_misspelt_cluster_is_one_line_and_exit_2(tmp_path):
    """Issue 21 item 7: ``--cluster lcoal`` was a 60-line traceback."""
    result = runner.invoke(app, ["run", _store(tmp_path), "--cluster", "lcoal"])
    assert result.exit_code == 2
    assert "did you mean 'local'?" in _one_line_error(result)


def test_a_model_name_not_found_says_where_it_looked(tmp_path, monkeypatch):
    """Issue 21 item 7: the message names the models directory and its variable."""
    monkeypatch.setenv("SPINEPS_SEGMENTOR_MODELS", str(tmp_path / "models"))
    result = runner.invoke(app, ["run", _store(tmp_path), "--semantic-model", "T2w_nothing"])
    assert result.exit_code == 2
    text = _one_line_error(result)
    assert "no model 'T2w_nothing'" in text and "$SPINEPS_SEGMENTOR_MODELS" in text
    assert str(tmp_path / "models") in text.replace(" ", "")  # rich may break the path


def test_export_of_a_missing_store_says_how_to_make_one(tmp_path):
    """Issue 21 item 7: not "create it with mode='a'", which is Python, not a command."""
    result = runner.invoke(app, ["export", str(tmp_path / "nostore.zarr"), str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "spineps-dask ingest BIDS STORE" in _one_line_error(result)
    assert not (tmp_path / "nostore.zarr").exists()


@pytest.mark.slow
def test_run_exits_1_when_its_ingest_refused_a_scan(tmp_path):
    """Issue 21 item 7: ``ingest`` exits 1 for a refused scan, and ``run -i`` now too (it
    exited 0): one exit-code scheme for every command (README, "Exit codes")."""
    broken = tmp_path / "bids/sub-01/anat/sub-01_T2w.nii.gz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a NIfTI file")
    store = str(tmp_path / "c.zarr")
    args = ["-i", str(tmp_path / "bids"), "--workers", "1", "--threads", "1"]
    result = runner.invoke(app, ["run", store, *args])
    assert result.exit_code == 1, result.output
    assert "sub-01" in result.output and "cannot read" in result.output
    assert runner.invoke(app, ["ingest", str(tmp_path / "bids"), store]).exit_code == 1
