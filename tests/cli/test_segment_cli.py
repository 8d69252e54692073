"""``spineps-dask segment``: one scan to the reference's four outputs, and the correction
workflow (``--semantic``: instance phase only, on a given semantic mask); the centroid file
and the printed line say how the vertebrae were named (the labelling model given with
``--labeling-model`` or the shipped demo model by default; the rule with ``--labeling-model
none``, and by default where the package holds no demo labelling model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.io.bids import ScanName
from spineps_dask.io.nifti import load_volume
from spineps_dask.phantom import make_phantom
from spineps_dask.phantom.cohort import write_phantom
from tests.labeling_model import labeling_folder

runner = CliRunner()


def _scan(tmp_path):
    # No L6/T13: from the sacrum alone an extra lumbar vertebra cannot be told (README).
    ph = make_phantom(11, region="lumbar", spacing=(1.0, 1.0, 3.0), has_l6=False, has_t13=False)
    scan = write_phantom(tmp_path / "bids", ph, ScanName(sub="01"))
    return ph, scan


def test_segment_writes_bids_named_outputs(tmp_path):
    ph, scan = _scan(tmp_path)
    out = tmp_path / "out"
    lab = str(labeling_folder())
    args = ["segment", str(scan), "--out", str(out), "--no-n4", "--labeling-model", lab]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "sub-01_mod-T2w_ctd.json",
        "sub-01_mod-T2w_seg-spine_msk.nii.gz",
        "sub-01_mod-T2w_seg-vert_msk.nii.gz",
        "sub-01_mod-T2w_snp.png",
    ]
    inst = load_volume(out / "sub-01_mod-T2w_seg-vert_msk.nii.gz")
    np.testing.assert_allclose(inst.affine, ph.image.affine)
    ctd = json.loads((out / "sub-01_mod-T2w_ctd.json").read_text())
    assert ctd[0]["direction"] == list(inst.orientation)
    assert ctd[0]["naming"]["naming"] == "model+anchors"
    assert 0 <= ctd[0]["naming"]["naming_confidence"] <= 1
    vertebrae = [e for e in ctd[1:] if e["label"] < 100 and e["label"] != 26]
    assert vertebrae and all(0 <= e["confidence"] <= 1 for e in vertebrae)
    assert "named by model+anchors (confidence" in " ".join(result.output.split())


@pytest.mark.parametrize("how", ["none", "no demo shipped"])
def test_rule_naming_without_a_labelling_model(tmp_path, monkeypatch, how):
    """``--labeling-model none``, or no option while the package ships no demo labelling
    model (the default then names by the rule, cleanly: no error, no model loaded)."""
    from spineps_dask import config

    _, scan = _scan(tmp_path)
    out = tmp_path / "out"
    args = ["segment", str(scan), "--out", str(out), "--no-n4", "--no-snapshot"]
    if how == "none":
        result = runner.invoke(app, [*args, "--labeling-model", "none"])
    else:
        monkeypatch.setattr(config, "DEMO_MODELS", _demo_without_labeling(tmp_path))
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "named by rule (anchor" in " ".join(result.output.split())  # soft-wrapped
    ctd = json.loads((out / "sub-01_mod-T2w_ctd.json").read_text())
    assert ctd[0]["naming"]["naming"] == "rule" and ctd[0]["naming"]["naming_confidence"] is None
    assert all("confidence" not in e for e in ctd[1:])
    bad = runner.invoke(app, [*args, "--naming", "guess"])
    assert bad.exit_code == 2 and "model+anchors" in bad.output


def test_model_naming_without_a_labelling_model_is_an_error(tmp_path):
    """Asking for model naming with no labelling model stops with the way out, instead of
    quietly naming by the rule (`segment`, and `RunConfig` for `run` and the library)."""
    from spineps_dask.config import RunConfig

    _, scan = _scan(tmp_path)
    out = tmp_path / "out"
    args = ["segment", str(scan), "--out", str(out), "--labeling-model", "none"]
    result = runner.invoke(app, [*args, "--naming", "model"])
    assert result.exit_code == 2 and "--labeling-model" in " ".join(result.output.split())
    assert not out.exists()
    with pytest.raises(ValueError, match="needs a labelling model"):
        RunConfig.from_request({"naming": "model+anchors", "labeling_model": "none"})
    ref = {"naming": "model", "labeling_model": "none", "reference_mode": True}
    assert RunConfig.from_request(ref).labeling_folder is None  # reference mode: the rule
    stored = RunConfig.from_dict({"labeling_model": "none"}).to_dict()
    assert RunConfig.from_dict(stored).labeling_folder is None  # stored configs still read


def _demo_without_labeling(tmp_path):
    """The shipped demo folders, less any labelling one: what the package holds until a demo
    labelling model is shipped."""
    from spineps_dask.config import DEMO_MODELS

    demo = tmp_path / "demo_models"
    demo.mkdir()
    for kind in ("semantic", "instance"):
        (demo / kind).symlink_to(DEMO_MODELS / kind)
    return demo


def test_semantic_given_runs_the_instance_phase_on_it(tmp_path):
    """With the true semantic mask the instance phase finds the phantom's vertebrae."""
    ph, scan = _scan(tmp_path)
    gt = tmp_path / "bids/derivatives/groundtruth/sub-01/anat/sub-01_mod-T2w_seg-spine_msk.nii.gz"
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["segment", str(scan), "--out", str(out), "--semantic", str(gt), "--no-snapshot"]
    )
    assert result.exit_code == 0, result.output
    sem = load_volume(out / "sub-01_mod-T2w_seg-spine_msk.nii.gz")
    np.testing.assert_array_equal(sem.data, ph.semantic.data)  # the given mask, untouched
    inst = np.asarray(load_volume(out / "sub-01_mod-T2w_seg-vert_msk.nii.gz").data)
    ref = np.asarray(ph.instance.data)
    found = [v for v in np.unique(ref) if 0 < v < 26]
    dice = [
        2 * np.sum((inst == v) & (ref == v)) / (np.sum(inst == v) + np.sum(ref == v)) for v in found
    ]
    assert np.median(dice) > 0.8, dice


def test_unreadable_scan_is_a_clear_error(tmp_path):
    bad = tmp_path / "sub-01_T2w.nii.gz"
    bad.write_text("not an image")
    result = runner.invoke(app, ["segment", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "cannot segment sub-01_T2w.nii.gz" in result.output
