"""Tidy per-subject tables, their summary, Markdown and Parquet round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineps_dask.errors import InputError
from spineps_dask.evaluate import write_summary
from spineps_dask.io.tables import read_table, write_table
from spineps_dask.metrics.tables import evaluate_subject, summarize, summary_markdown

from .conftest import load_sample


def test_identical_masks_score_perfectly_on_every_row():
    """Real MRI sample against itself: global DSC 1 / ASSD 0, instance RQ=SQ=PQ=1, no FP/FN."""
    sem, inst, spacing = load_sample("mri")
    df = evaluate_subject(sem, inst, sem, inst, spacing=spacing, subject="sub-mri", run_id="r1")
    assert list(df.columns) == [
        *("scan", "subject", "session"),
        *("structure", "level", "metric", "value", "run_id"),
    ]
    by = df.set_index(["structure", "level", "metric"])["value"]
    assert by[("vertebra", "global", "DSC")] == 1.0
    assert by[("spinal_canal", "global", "ASSD")] == 0.0
    for group in ("vertebra", "ivd", "endplate"):
        for metric in ("RQ", "SQ", "PQ", "DSC"):
            assert by[(group, "instance", metric)] == 1.0
        assert by[(group, "instance", "FP")] == by[(group, "instance", "FN")] == 0
    assert by[("vertebra", "C6", "DSC")] == 1.0
    assert by[("ivd", "IVD C5", "ASSD")] == 0.0
    assert ("sacrum", "global", "DSC") not in by.index  # absent from both: no row


def test_removed_vertebra_lowers_rq_and_global_dice():
    sem, inst, spacing = load_sample("mri")
    pred_inst = inst.copy()
    pred_inst[inst == 6] = 0
    pred_sem = sem.copy()
    pred_sem[inst == 6] = 0
    df = evaluate_subject(pred_sem, pred_inst, sem, inst, spacing=spacing, subject="sub-mri")
    by = df.set_index(["structure", "level", "metric"])["value"]
    assert by[("vertebra", "instance", "RQ")] == pytest.approx(2 / 2.5)
    assert by[("vertebra", "global", "DSC")] < 0.8
    assert by[("vertebra", "global", "ASSD")] > 0


def test_labels_outside_the_scheme_are_refused_with_subject():
    sem, inst, spacing = load_sample("ct")
    bad = inst.copy()
    bad[0, 0, 0] = 77
    with pytest.raises(InputError, match=r"\[sub-ct, evaluate\] reference instance mask .*\[77\]"):
        evaluate_subject(sem, inst, sem, bad, spacing=spacing, subject="sub-ct")


def test_float_masks_are_refused():
    sem = np.zeros((4, 4, 4), np.float32)
    with pytest.raises(InputError, match="non-negative integer labels, got dtype float32"):
        evaluate_subject(sem, sem, sem, sem, spacing=(1, 1, 1), subject="s")


def test_context_values_become_columns_and_dicts_json():
    sem = np.zeros((6, 6, 6), np.uint8)
    sem[1:4, 1:4, 1:4] = 61
    inst = np.zeros_like(sem)
    df = evaluate_subject(
        sem, inst, sem, inst, spacing=(1, 1, 1), subject="s", params={"b": 2, "a": 1}
    )
    assert set(df["params"]) == {'{"a": 1, "b": 2}'}
    assert set(df["structure"]) == {"spinal_canal"}


def _table():
    rows = []
    for i, (d, a) in enumerate([(0.9, 1.0), (0.8, 2.0), (0.7, np.inf)]):
        rows += [
            {
                "subject": f"s{i}",
                "structure": "ivd",
                "level": "global",
                "metric": "DSC",
                "value": d,
            },
            {
                "subject": f"s{i}",
                "structure": "ivd",
                "level": "global",
                "metric": "ASSD",
                "value": a,
            },
            {
                "subject": f"s{i}",
                "structure": "ivd",
                "level": "IVD L1",
                "metric": "DSC",
                "value": d,
            },
        ]
    return pd.DataFrame(rows).assign(run_id="r")


def test_summary_is_mean_and_sample_sd_with_nonfinite_counted():
    s = summarize(_table()).set_index("metric")
    assert s.loc["DSC", "mean"] == pytest.approx(0.8)
    assert s.loc["DSC", "sd"] == pytest.approx(0.1)
    assert s.loc["ASSD", "mean"] == pytest.approx(1.5)
    assert (s.loc["ASSD", "n"], s.loc["ASSD", "n_nonfinite"]) == (2, 1)
    assert len(s) == 2  # per-instance level left out by default
    md = summary_markdown(summarize(_table()))
    assert "| r | IVD | global | ↑ DSC | 0.800 ± 0.100 | 3 |" in md
    assert "| r | IVD | global | ↓ ASSD | 1.500 ± 0.707 | 2 (+1 n/a) |" in md


def test_parquet_and_summary_files_round_trip(tmp_path):
    df = _table()
    path = write_table(df, tmp_path / "out" / "table.parquet")
    pd.testing.assert_frame_equal(read_table(path), df)
    assert not list(path.parent.glob(".*tmp*"))
    csv, md = write_summary(summarize(df), tmp_path / "summary")
    assert pd.read_csv(csv)["mean"].iloc[0] == pytest.approx(0.8)
    assert md.read_text().startswith("| run_id |")
