"""``spineps-dask sweep``: a bad config stops before any work, with exit code 2 and the reason."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from spineps_dask.cli import app

runner = CliRunner()


def _config(tmp_path, **raw):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    path = _config(tmp_path, cohort={"phantom": {"subjects": 1}}, grid={"postprocesing": [True]})
    res = runner.invoke(app, ["sweep", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "unknown setting 'postprocesing'" in res.output and "postprocess" in res.output
    assert not (tmp_path / "out").exists(), "work started despite a bad config"


def test_missing_fold_stops_before_the_cohort_is_made(tmp_path):
    path = _config(tmp_path, cohort={"phantom": {"subjects": 1}}, grid={"folds": [[0], [4]]})
    res = runner.invoke(app, ["sweep", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "folds: [4] not in the semantic model" in res.output
    assert not (tmp_path / "out" / "bids").exists()


def test_missing_bids_folder_stops_before_a_cluster_or_store(tmp_path):
    """The sweep lists its BIDS folder before it starts a cluster (``yarn`` would fail if one
    were started) or creates the store its workers ingest into."""
    path = _config(
        tmp_path,
        cohort={"bids": str(tmp_path / "no-such-bids")},
        cluster="yarn",
        grid={"postprocess": [True]},
    )
    res = runner.invoke(app, ["sweep", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "no-such-bids" in res.output and "does not exist" in res.output
    assert not (tmp_path / "out" / "cohort.zarr").exists()
