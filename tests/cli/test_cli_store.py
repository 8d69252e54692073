"""``spineps-dask ingest`` / ``export`` from the command line."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from spineps_dask.cli import app


def _scan(root, sub, data):
    folder = root / f"sub-{sub}" / "anat"
    folder.mkdir(parents=True)
    nib.save(
        nib.Nifti1Image(data, np.diag([0.6, 0.6, 3.3, 1])), str(folder / f"sub-{sub}_T2w.nii.gz")
    )


def test_ingest_prints_a_summary_and_export_writes_nifti(tmp_path):
    good = np.arange(8 * 8 * 4, dtype=np.int16).reshape(8, 8, 4)
    bad = good.astype(np.float32)
    bad[0, 0, 0] = np.inf
    _scan(tmp_path / "bids", "001", good)
    _scan(tmp_path / "bids", "002", bad)
    runner = CliRunner()
    store = str(tmp_path / "c.zarr")
    result = runner.invoke(app, ["ingest", str(tmp_path / "bids"), store])
    assert result.exit_code == 1, result.output  # one scan failed
    assert "ingested" in result.output and "sub-002" in result.output
    assert "NaN or Inf" in result.output
    again = runner.invoke(app, ["ingest", str(tmp_path / "bids"), store, "-j", "1"])
    assert "skipped" in again.output
    out = runner.invoke(app, ["export", store, str(tmp_path / "out"), "-a", "image"])
    assert out.exit_code == 0, out.output
    assert "wrote 2 files" in out.output  # the image and dataset_description.json
    assert (tmp_path / "out/sub-001/anat/sub-001_T2w.nii.gz").is_file()


def test_ingest_of_a_missing_folder_exits_2_with_the_reason(tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope"), str(tmp_path / "c.zarr")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "c.zarr").exists()
