"""Wilcoxon signed-rank comparison: hand-computed p-values and the better-run direction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spineps_dask.metrics.stats import compare_runs, wilcoxon_paired


def test_all_positive_differences_give_exact_p_and_direction():
    """10 pairs, A higher in all: exact two-sided p = 2 / 2^10; better depends on the metric."""
    b = np.linspace(0.80, 0.90, 10)
    a = b + np.arange(1, 11) * 0.001
    dsc = wilcoxon_paired(a, b, higher_is_better=True)
    assert dsc.n_pairs == 10
    assert dsc.p_value == pytest.approx(2 / 1024)
    assert dsc.median_diff == pytest.approx(0.0055)
    assert dsc.direction == "A better"
    assert wilcoxon_paired(a, b, higher_is_better=False).direction == "B better"


def test_one_small_negative_difference_p_value():
    """Differences ranked 1..10, rank 1 negative: W- = 1, P(W <= 1) = 2/1024, two-sided 4/1024."""
    diff = np.arange(1, 11) * 0.01
    diff[0] *= -1
    res = wilcoxon_paired(diff, np.zeros(10), higher_is_better=False)
    assert res.p_value == pytest.approx(4 / 1024)
    assert res.direction == "B better"  # A has the larger ASSD


def test_nonfinite_pairs_dropped_and_ties_reported():
    res = wilcoxon_paired([1.0, np.inf, np.nan], [1.0, 2.0, 3.0], higher_is_better=True)
    assert (res.n_pairs, res.p_value, res.direction) == (1, 1.0, "no difference")
    empty = wilcoxon_paired([np.nan], [1.0], higher_is_better=True)
    assert empty.n_pairs == 0 and math.isnan(empty.p_value)


def _run(values, metric="DSC", structure="vertebra", level="instance"):
    return pd.DataFrame(
        {
            "scan": [f"sub-{i}" for i in range(len(values))],
            "structure": structure,
            "level": level,
            "metric": metric,
            "value": values,
        }
    )


def test_compare_runs_pairs_on_subject_and_reports_per_metric():
    """Rows pair on subject + structure + level + metric; an unpaired subject is left out."""
    b_dsc = np.linspace(0.8, 0.9, 8)
    a = pd.concat([_run(b_dsc + 0.01), _run(np.full(8, 0.5), metric="ASSD")])
    b = pd.concat([_run(np.r_[b_dsc, 0.1]), _run(np.full(8, 0.7) + np.arange(8) * 0.01, "ASSD")])
    out = compare_runs(a, b).set_index("metric")
    assert out.loc["DSC", "n_pairs"] == 8
    assert out.loc["DSC", "direction"] == "A better"
    assert out.loc["DSC", "p_value"] == pytest.approx(2 / 256)
    assert out.loc["ASSD", "direction"] == "A better"  # lower ASSD in A


def test_compare_runs_refuses_metrics_without_direction():
    with pytest.raises(ValueError, match="no known better direction"):
        compare_runs(_run([1.0]), _run([1.0]), metrics=["TP"])


def test_compare_runs_refuses_a_table_holding_two_runs():
    """Two runs in one table would pair every row with every other: refused, with the fix."""
    both = pd.concat([_run([0.9, 0.8]).assign(run_id="a"), _run([0.7, 0.6]).assign(run_id="b")])
    with pytest.raises(ValueError, match="one run per table"):
        compare_runs(both, _run([0.5, 0.5]))
