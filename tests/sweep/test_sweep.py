"""A two-setting sweep on two small phantoms (plus one bad scan), with the shipped demo models.

Protects: the semantic model runs once per subject for a grid of post-processing settings; a
setting's metrics equal those of the single-process `segment` with the same settings; the
grid table has one row per subject x setting x structure x level x metric with the setting
columns; a failing subject ends only its own pairs; a rerun computes nothing new.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.geometry import Volume
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.metrics.tables import KEY_COLUMNS, evaluate_subject
from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort
from spineps_dask.pipeline.segment import InstanceSpace, segment
from spineps_dask.sweep import SweepConfig, run_sweep

pytestmark = pytest.mark.slow

GOOD = ["sub-001", "sub-002"]
BAD = "sub-axial"
VOTE_BASE = 0.5  # a non-default merge threshold, fixed for both grid points


def _anat(root, subject):
    return root / subject / "anat"


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    """Two narrow lumbar phantoms, plus an axial scan (with references) that cannot be segmented."""
    root = tmp_path_factory.mktemp("cohort") / "bids"
    write_bids_cohort(
        root, subjects=2, seed=900, region="lumbar", fov_lr_mm=40.0, fov_ap_mm=(45.0, 95.0)
    )
    src = load_volume(_anat(root, GOOD[0]) / f"{GOOD[0]}_T2w.nii.gz")
    axial = np.diag([0.8, 0.8, 4.0, 1.0])  # thick slices along S-I: an axial stack
    save_volume(Volume(src.data, axial), _anat(root, BAD) / f"{BAD}_T2w.nii.gz")
    for desc in ("spine", "vert"):
        ref = load_volume(
            _anat(root / GROUNDTRUTH, GOOD[0]) / f"{GOOD[0]}_mod-T2w_seg-{desc}_msk.nii.gz"
        )
        save_volume(
            Volume(ref.data, axial),
            _anat(root / GROUNDTRUTH, BAD) / f"{BAD}_mod-T2w_seg-{desc}_msk.nii.gz",
        )
    return root


@pytest.fixture(scope="module")
def config(bids, tmp_path_factory):
    return SweepConfig.from_dict(
        {
            "cohort": {"bids": str(bids)},
            "out": str(tmp_path_factory.mktemp("sweep") / "out"),
            # naming by the rule: test_sweep_naming covers the labelling model
            "fixed": {"n4": False, "merge.vote_base": VOTE_BASE, "naming": "rule"},
            "grid": {"postprocess": [True, False]},
        }
    )


@pytest.fixture(scope="module")
def result(config, client):
    return run_sweep(config, client=client)


def test_semantic_model_runs_once_per_subject(result):
    """Two settings, two subjects: prepare, semantic and the instance tasks once per subject;
    only assembly (merge, post-processing) and scoring once per subject and setting."""
    assert result.runs("semantic") == dict.fromkeys(GOOD, 1)
    assert result.runs("prepare") == dict.fromkeys(GOOD, 1)
    assert result.runs("assemble") == dict.fromkeys(GOOD, 2)
    assert result.runs("reduce") == dict.fromkeys(GOOD, 2)
    assert result.runs("label") == {}
    inst = result.stages[result.stages.stage == "instance"]
    assert set(inst.subject) == set(GOOD)
    assert inst.groupby("subject")["key"].nunique().eq(1).all()  # one semantic key each


def test_grid_table_rows_and_columns(result):
    """One row per subject x setting x structure x level x metric, with the setting columns."""
    m = result.metrics
    assert {*KEY_COLUMNS, "value", "setting", "setting_id", "n4", "postprocess"} <= set(m.columns)
    assert {"merge.vote_base", "step_size", "folds", "models"} <= set(m.columns)
    assert set(m.models) == {RunConfig().model_versions()}
    assert set(m.subject) == set(GOOD)
    assert list(dict.fromkeys(m.setting)) == ["postprocess=on", "postprocess=off"]
    assert not m.duplicated([*KEY_COLUMNS, "setting"]).any()
    assert (m["merge.vote_base"] == VOTE_BASE).all() and (~m["n4"]).all()
    assert dict(zip(m.setting, m.postprocess, strict=True)) == {
        "postprocess=on": True,
        "postprocess=off": False,
    }
    per_pair = m.groupby(["subject", "setting"]).size()
    assert len(per_pair) == 4 and (per_pair > 20).all()
    assert {"DSC", "ASSD", "RQ", "SQ", "PQ"} <= set(m.metric)


def test_setting_equals_plain_segment(result, bids):
    """The post-processing-off setting scores exactly as `segment` with the same settings."""
    subject = GOOD[0]
    models = RunConfig()  # the demo models, as the sweep resolves them
    sem_model = model_cache.semantic_model(models.semantic_model, folds=(0,), step_size=0.5)
    inst_model = model_cache.instance_model(models.instance_model)
    space = InstanceSpace.from_config(inst_model.config)
    merge = replace(space.merge_settings, vote_base=VOTE_BASE)
    image = load_volume(_anat(bids, subject) / f"{subject}_T2w.nii.gz")
    seg = segment(image, sem_model, inst_model, n4=False, postprocess_on=False, merge=merge)
    gt = _anat(bids / GROUNDTRUTH, subject)
    expected = evaluate_subject(
        np.asarray(seg.semantic.data),
        np.asarray(seg.instance.data),
        np.asarray(load_volume(gt / f"{subject}_mod-T2w_seg-spine_msk.nii.gz").data),
        np.asarray(load_volume(gt / f"{subject}_mod-T2w_seg-vert_msk.nii.gz").data),
        spacing=seg.semantic.spacing,
        subject=subject,
    )
    m = result.metrics
    got = m[(m.scan == subject) & (m.setting == "postprocess=off")][[*KEY_COLUMNS, "value"]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected[[*KEY_COLUMNS, "value"]])
    on = m[(m.setting == "postprocess=on") & (m.level == "instance")].set_index(list(KEY_COLUMNS))[
        "value"
    ]
    off = m[(m.setting == "postprocess=off") & (m.level == "instance")].set_index(
        list(KEY_COLUMNS)
    )["value"]
    assert not np.allclose(on.sort_index(), off.sort_index(), equal_nan=True), "settings ignored"


def test_failed_subject_ends_only_its_own_pairs(result):
    """The axial scan fails in prepare for both settings, with the reason; nothing else fails."""
    f = result.failures
    assert set(f.subject) == {BAD}
    assert sorted(f.setting) == ["postprocess=off", "postprocess=on"]
    assert set(f.step) == {"prepare"} and f.error.str.contains("axial", case=False).all()


def test_outputs_and_comparisons(result, config):
    """Tables, summaries and the PNG are written, work arrays are gone, and the non-baseline
    setting is compared with the baseline over both subjects."""
    out = config.out
    for name in (
        "metrics.parquet",
        "summary.csv",
        "summary.md",
        "comparisons.md",
        "stages.parquet",
    ):
        assert (out / name).is_file(), name
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert not any((out / "work.zarr").glob("sub-*")), "work arrays left behind"
    comp = result.comparisons()
    assert set(comp.setting) == {"postprocess=off"} and set(comp.baseline) == {"postprocess=on"}
    assert set(comp.direction) <= {"setting better", "baseline better", "no difference"}
    pq = comp[(comp.structure == "vertebra") & (comp.metric == "PQ")]
    assert len(pq) == 1 and pq.n_pairs.iloc[0] == 2
    summary = result.summary()
    assert list(dict.fromkeys(summary.setting)) == ["postprocess=on", "postprocess=off"]


def test_the_cohort_is_ingested_by_the_workers(result, client):
    """Issue 19: the sweep's scans and reference masks are read and written by the cluster's
    workers (`distributed.ingest`, as `run` ingests), the driver only lists them."""
    prefixes = client.run_on_scheduler(lambda dask_scheduler: set(dask_scheduler.task_prefixes))
    for task in ("ingest-batch", "references-batch"):  # `distributed.ingest` names its keys
        assert any(p.startswith(task) for p in prefixes), (task, prefixes)
    assert result.metrics.subject.nunique() == len(GOOD)


def test_rerun_computes_nothing_new(result, config, client):
    """Finished parts are kept on disk: a rerun only retries the failed subject."""
    again = run_sweep(config, client=client)
    assert again.stages.empty
    assert set(again.failures.subject) == {BAD}
    pd.testing.assert_frame_equal(again.metrics, result.metrics)


def test_stage_counts_are_in_subject_order_whatever_order_stages_finished():
    """Stages finish in any order on a cluster; the counts print the same every time."""
    from spineps_dask.sweep.driver import stage_counts

    rows = [
        {"subject": "sub-002", "stage": "semantic"},
        {"subject": "sub-001", "stage": "semantic"},
        {"subject": "sub-001", "stage": "reduce"},
    ]
    assert str(stage_counts(rows, "semantic")) == "{'sub-001': 1, 'sub-002': 1}"
