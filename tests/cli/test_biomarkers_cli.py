"""``spineps-dask biomarkers`` on a folder of box-spine masks with one broken scan."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.io.nifti import save_volume
from tests.biomarkers.test_box import _box_spine

runner = CliRunner()


def test_biomarkers_command_writes_table_and_reports_missing_partner(tmp_path):
    """Two scans measured into one table; a scan without its instance mask is named, exit 1."""
    sem, inst = _box_spine()
    for stem in ("sub-01", "sub-02_ses-2"):
        save_volume(sem, tmp_path / f"{stem}_mod-T2w_seg-spine_msk.nii.gz")
        save_volume(inst, tmp_path / f"{stem}_mod-T2w_seg-vert_msk.nii.gz")
    save_volume(sem, tmp_path / "sub-03_mod-T2w_seg-spine_msk.nii.gz")
    out = tmp_path / "res" / "bio.parquet"
    result = runner.invoke(app, ["biomarkers", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "sub-03 not measured" in result.output and "missing instance" in result.output
    table = pd.read_parquet(out)
    assert sorted(table["scan"].unique()) == ["sub-01", "sub-02_ses-2"]
    assert set(zip(table.subject, table.session.fillna(""), strict=True)) == {
        ("sub-01", ""),
        ("sub-02", "ses-2"),
    }
    l3 = table[(table.scan == "sub-01") & (table.level == "L3")].set_index("measure").value
    assert l3["height_middle_mm"] == 20.0


def test_biomarkers_command_fails_cleanly_on_missing_folder(tmp_path):
    """A folder that does not exist: exit code 2 and a message naming it."""
    result = runner.invoke(app, ["biomarkers", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such folder" in result.output
