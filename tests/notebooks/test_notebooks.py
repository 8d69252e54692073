"""The quick-start and exploration notebooks run top to bottom on a two-subject cohort."""

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
