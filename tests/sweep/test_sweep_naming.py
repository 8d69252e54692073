"""A naming sweep: rule against labelling model on the same instance masks.

Protects: a grid over ``naming`` runs the semantic model, the instance tasks and the assembly
(merge, post-processing) once per subject, the labelling model once per model setting, and
scores each naming; the label-blind metrics (vertebra Dice, PQ) are identical across namings,
because both name the same masks; the model setting's scores equal ``segment`` with the
labelling model; the identification rate (ID) is reported per setting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.io.nifti import load_volume
from spineps_dask.metrics.tables import KEY_COLUMNS, evaluate_subject
from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort
from spineps_dask.pipeline.naming import NamingSettings
from spineps_dask.pipeline.segment import segment
from spineps_dask.sweep import SweepConfig, run_sweep
from tests.labeling_model import labeling_folder

pytestmark = pytest.mark.slow

SUBJECT = "sub-001"


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort") / "bids"
    write_bids_cohort(
        root, subjects=1, seed=901, region="lumbar", fov_lr_mm=40.0, fov_ap_mm=(45.0, 95.0)
    )
    return root


@pytest.fixture(scope="module")
def result(bids, tmp_path_factory, client):
    config = SweepConfig.from_dict(
        {
            "cohort": {"bids": str(bids)},
            "out": str(tmp_path_factory.mktemp("sweep") / "out"),
            "models": {"labeling": str(labeling_folder())},
            "fixed": {"n4": False},
            "grid": {"naming": ["rule", "model"]},
        }
    )
    return run_sweep(config, client=client)


def test_models_and_assembly_run_once(result):
    assert result.runs("semantic") == {SUBJECT: 1}
    assert result.runs("assemble") == {SUBJECT: 1}
    assert result.runs("label") == {SUBJECT: 1}
    assert result.runs("reduce") == {SUBJECT: 2}


def test_same_masks_named_two_ways(result):
    m = result.metrics
    assert list(dict.fromkeys(m.setting)) == ["naming=rule", "naming=model"]
    blind = m[(m.structure == "vertebra") & (m.level == "instance") & m.metric.isin(["DSC", "PQ"])]
    by = blind.pivot_table(index="metric", columns="setting", values="value")
    np.testing.assert_allclose(by["naming=rule"], by["naming=model"])
    ident = m[(m.structure == "vertebra") & (m.metric == "ID")]
    assert set(ident.setting) == {"naming=rule", "naming=model"}
    assert ident.value.between(0, 1).all()


def test_model_setting_equals_segment(result, bids):
    models = RunConfig(labeling_model=labeling_folder())
    sem = model_cache.semantic_model(models.semantic_model, folds=(0,), step_size=0.5)
    inst = model_cache.instance_model(models.instance_model)
    lab = model_cache.labeling_model(models.labeling_model)
    image = load_volume(bids / SUBJECT / "anat" / f"{SUBJECT}_T2w.nii.gz")
    seg = segment(
        image, sem, inst, n4=False, labeling_model=lab, naming=NamingSettings(method="model")
    )
    gt = bids / GROUNDTRUTH / SUBJECT / "anat"
    expected = evaluate_subject(
        np.asarray(seg.semantic.data),
        np.asarray(seg.instance.data),
        np.asarray(load_volume(gt / f"{SUBJECT}_mod-T2w_seg-spine_msk.nii.gz").data),
        np.asarray(load_volume(gt / f"{SUBJECT}_mod-T2w_seg-vert_msk.nii.gz").data),
        spacing=seg.semantic.spacing,
        subject=SUBJECT,
    )
    m = result.metrics
    got = m[m.setting == "naming=model"][[*KEY_COLUMNS, "value"]]
    # issue 21: the table names the scan, the person and the visit; compared by scan
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected[[*KEY_COLUMNS, "value"]])
