"""``spineps-dask eval`` on a small folder of real masks (tptbox sample) and broken subjects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.geometry import Volume
from spineps_dask.io.nifti import save_volume
from tests.metrics.conftest import load_sample

runner = CliRunner()


def _write(folder, stem, sem, inst, affine):
    save_volume(Volume(sem, affine), folder / f"{stem}_mod-T2w_seg-spine_msk.nii.gz")
    save_volume(Volume(inst, affine), folder / f"{stem}_mod-T2w_seg-vert_msk.nii.gz")


def test_eval_writes_table_and_summary_and_reports_bad_subject(tmp_path):
    """Two good subjects evaluated; one with a foreign reference label and one without a
    prediction are reported by name, and the exit code says some failed."""
    sem, inst, spacing = load_sample("mri")
    affine = np.diag([*spacing, 1.0])
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    _write(ref, "sub-01", sem, inst, affine)
    _write(pred, "sub-01", sem, inst, affine)
    moved = np.roll(inst, 1, axis=0)
    _write(ref, "sub-02", sem, inst, affine)
    _write(pred, "sub-02", sem, moved.astype(np.uint16), affine)
    foreign = inst.copy()
    foreign[0, 0, 0] = 77
    _write(ref, "sub-03", sem, foreign, affine)
    _write(pred, "sub-03", sem, inst, affine)
    _write(ref, "sub-04", sem, inst, affine)

    out = tmp_path / "res" / "eval.parquet"
    result = runner.invoke(app, ["eval", str(pred), str(ref), "--out", str(out), "--run-id", "r7"])
    assert result.exit_code == 1, result.output
    assert "sub-03 not evaluated" in result.output and "[77]" in result.output
    assert "sub-04 not evaluated" in result.output and "missing predicted" in result.output
    assert "Vertebra" in result.output and "↑ PQ" in result.output

    table = pd.read_parquet(out)
    assert sorted(table["scan"].unique()) == ["sub-01", "sub-02"]
    assert set(table["run_id"]) == {"r7"}
    by = table.set_index(["scan", "structure", "level", "metric"])["value"]
    assert by[("sub-01", "vertebra", "instance", "PQ")] == 1.0
    assert by[("sub-02", "vertebra", "instance", "PQ")] < 1.0
    summary = pd.read_csv(tmp_path / "res" / "eval_summary.csv")
    row = summary.query("structure == 'vertebra' and level == 'instance' and metric == 'RQ'")
    assert row["n"].item() == 2
    assert "± " in (tmp_path / "res" / "eval_summary.md").read_text()


def test_eval_without_reference_masks_exits_2(tmp_path):
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    result = runner.invoke(app, ["eval", str(tmp_path / "pred"), str(tmp_path / "ref")])
    assert result.exit_code == 2
    assert "no reference masks" in result.output


def test_eval_of_folders_with_semantic_masks_only_scores_them(tmp_path):
    """Issue 21 item 5: folders that hold only semantic masks are scored (global Dice and
    ASSD), not refused with "no subject could be evaluated"; a scan whose prediction has
    both kinds but whose reference has only the semantic mask is scored on that."""
    sem, inst, spacing = load_sample("mri")
    affine = np.diag([*spacing, 1.0])
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for folder in (pred, ref):
        save_volume(Volume(sem, affine), folder / "sub-01_mod-T2w_seg-spine_msk.nii.gz")
    _write(pred, "sub-02", sem, inst, affine)
    save_volume(Volume(sem, affine), ref / "sub-02_mod-T2w_seg-spine_msk.nii.gz")
    out = tmp_path / "eval.parquet"
    result = runner.invoke(app, ["eval", str(pred), str(ref), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert sorted(table.scan.unique()) == ["sub-01", "sub-02"]
    assert set(table.level) == {"global"} and {"DSC", "ASSD"} == set(table.metric)
    assert (table[table.metric == "DSC"].value == 1.0).all()
