"""The notebooks run top to bottom on a two-subject cohort (04 needs a real cluster: not run)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name: str, cwd: Path, env: dict[str, str], monkeypatch) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def test_committed_notebooks_have_no_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.slow
def test_quickstart_then_exploration(tmp_path, monkeypatch):
    """01 makes and segments a cohort; 02 browses it (status, slices, biomarker plots)."""
    work = tmp_path / "work"
    env = {"SPINEPS_NB_WORK": str(work), "SPINEPS_NB_SUBJECTS": "2"}
    nb = _run("01_quickstart.ipynb", tmp_path, env, monkeypatch)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "2 done, 0 failed" in printed
    _run(
        "02_cohort_exploration.ipynb",
        tmp_path,
        {"SPINEPS_NB_STORE": str(work / "cohort.zarr")},
        monkeypatch,
    )


@pytest.mark.slow
def test_evaluation_sweep(tmp_path, monkeypatch):
    """03 runs a with/without post-processing sweep on two phantoms: semantic model once per
    subject, tables, box plots (an image output) and the Wilcoxon comparison."""
    env = {"SPINEPS_NB_WORK": str(tmp_path / "work"), "SPINEPS_NB_SUBJECTS": "2"}
    nb = _run("03_evaluation_sweep.ipynb", tmp_path, env, monkeypatch)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    printed = "".join(o.get("text", "") for o in outputs)
    assert "0 failed subject x setting pairs" in printed
    assert "semantic runs per subject: {'sub-001': 1, 'sub-002': 1}" in printed
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot shown"
    assert (tmp_path / "work" / "sweep" / "comparisons.md").is_file()
