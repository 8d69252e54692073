"""write_bids_cohort and ``spineps-dask phantom``: BIDS layout, derivative names, round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.io.bids import parse_scan_name
from spineps_dask.io.nifti import load_volume
from spineps_dask.phantom import make_phantom
from spineps_dask.phantom.cohort import GROUNDTRUTH, subject_seed, write_bids_cohort

from .conftest import COARSE_PIR, PIR

FAST = {"region": "cervical", "orientation": PIR, "spacing": COARSE_PIR}


def _truth_files(root: Path, scan: Path) -> dict[str, Path]:
    name = parse_scan_name(scan)
    folder = root / GROUNDTRUTH / f"sub-{name.sub}" / "anat"
    return {
        desc: folder / name.derivative(desc, ext)
        for desc, ext in (
            ("seg-spine_msk", ".nii.gz"),
            ("seg-vert_msk", ".nii.gz"),
            ("ctd", ".json"),
            ("truth", ".json"),
        )
    }


def test_cohort_layout_names_and_round_trip(tmp_path: Path) -> None:
    """Scans under sub-XXX/anat, truth under derivatives/groundtruth with the pipeline's names;
    files hold exactly what make_phantom returns for the subject's seed."""
    scans = write_bids_cohort(tmp_path, subjects=2, seed=5, **FAST)
    assert [s.relative_to(tmp_path).as_posix() for s in scans] == [
        "sub-001/anat/sub-001_T2w.nii.gz",
        "sub-002/anat/sub-002_T2w.nii.gz",
    ]
    truth = _truth_files(tmp_path, scans[1])
    assert truth["seg-vert_msk"].name == "sub-002_mod-T2w_seg-vert_msk.nii.gz"
    assert all(p.is_file() for p in truth.values())
    expected = make_phantom(subject_seed(5, 1), **FAST)
    image = load_volume(scans[1])
    np.testing.assert_array_equal(image.data, expected.image.data)
    np.testing.assert_allclose(image.affine, expected.image.affine, atol=1e-5)
    sem = load_volume(truth["seg-spine_msk"])
    inst = load_volume(truth["seg-vert_msk"])
    np.testing.assert_array_equal(sem.data, expected.semantic.data)
    np.testing.assert_array_equal(inst.data, expected.instance.data)
    ctd = json.loads(truth["ctd"].read_text())
    assert ctd[0]["direction"] == list(PIR)
    labels = {e["label"] for e in ctd[1:]}
    assert labels == {k for k in expected.centroids if k < 100}
    with (tmp_path / "participants.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["participant_id"] for r in rows] == ["sub-001", "sub-002"]
    assert rows[0]["region"] == "cervical" and rows[0]["seed"] == str(subject_seed(5, 0))


def test_cli_phantom_writes_cohort(tmp_path: Path) -> None:
    """``spineps-dask phantom OUT -n 1 --region ... --orientation --spacing`` writes one subject
    with the asked geometry and exits 0."""
    args = ["phantom", str(tmp_path), "--subjects", "1", "--seed", "2", "--region", "cervical"]
    args += ["--orientation", "PIR", "--spacing", "1.2,1.2,4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scan = load_volume(tmp_path / "sub-001" / "anat" / "sub-001_T2w.nii.gz")
    assert scan.orientation == PIR and scan.spacing == pytest.approx((1.2, 1.2, 4.0))
    assert (tmp_path / "participants.tsv").read_text().count("\n") == 2


def test_cli_rejects_unknown_region(tmp_path: Path) -> None:
    """A wrong --region exits 2 and names the allowed values."""
    result = CliRunner().invoke(app, ["phantom", str(tmp_path), "--region", "neck"])
    assert result.exit_code == 2
    assert "cervical" in result.output
