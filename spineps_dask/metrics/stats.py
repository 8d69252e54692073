"""Paired comparison of two runs over subjects: Wilcoxon signed-rank test (paper, Methods 2.6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spineps_dask.metrics.tables import HIGHER_IS_BETTER, KEY_COLUMNS


@dataclass(frozen=True)
class PairedTest:
    """Outcome of one paired comparison of run A against run B.

    ``median_diff`` is the median of A - B over the pairs; ``direction`` says which run is better
    given whether the metric is higher-better (Dice, RQ, SQ, PQ) or lower-better (ASSD).
    """

    n_pairs: int
    p_value: float
    median_diff: float
    direction: str


def wilcoxon_paired(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, higher_is_better: bool
) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test on paired values ``a[i]`` vs ``b[i]``.

    Pairs with a non-finite value on either side (NaN, ``inf`` ASSD) are dropped first. With no
    pair left the p-value is NaN; with all differences zero it is 1 and the direction
    ``"no difference"``. When the median difference is 0 the mean difference decides the
    direction.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    n = int(diff.size)
    if n == 0:
        return PairedTest(0, float("nan"), float("nan"), "no pairs")
    if not np.any(diff):
        return PairedTest(n, 1.0, 0.0, "no difference")
    p_value = float(stats.wilcoxon(diff).pvalue)
    median = float(np.median(diff))
    lead = median if median != 0 else float(np.mean(diff))
    a_better = (lead > 0) == higher_is_better
    return PairedTest(n, p_value, median, "A better" if a_better else "B better")


def compare_runs(
    run_a: pd.DataFrame,
    run_b: pd.DataFrame,
    *,
    levels: Sequence[str] = ("global", "instance"),
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Wilcoxon test of run A vs run B per structure, level and metric, paired over subjects.

    Parameters
    ----------
    run_a, run_b
        Tidy tables from :func:`spineps_dask.metrics.tables.evaluate_subject` (concatenated over
        subjects). Rows are paired on ``subject, structure, level, metric``.
    levels, metrics
        Which rows to compare; ``metrics`` defaults to every metric with a known better
        direction (DSC, IoU, RQ, SQ, PQ, ASSD).

    Returns
    -------
    pandas.DataFrame
        One row per (structure, level, metric): ``n_pairs, p_value, median_diff, direction``.
    """
    wanted = list(metrics) if metrics is not None else list(HIGHER_IS_BETTER)
    unknown = [m for m in wanted if m not in HIGHER_IS_BETTER]
    if unknown:
        raise ValueError(
            f"metrics {unknown} have no known better direction; use some of "
            f"{sorted(HIGHER_IS_BETTER)}"
        )
    cols = [*KEY_COLUMNS, "value"]
    for name, run in (("run_a", run_a), ("run_b", run_b)):
        dup = run.duplicated(list(KEY_COLUMNS))
        if dup.any():
            first = run.loc[dup, list(KEY_COLUMNS)].iloc[0].tolist()
            raise ValueError(
                f"{name} has {int(dup.sum())} repeated rows per subject/structure/level/metric "
                f"(e.g. {first}); pass one run per table, e.g. df[df.run_id == ...]"
            )
    paired = run_a[cols].merge(run_b[cols], on=list(KEY_COLUMNS), suffixes=("_a", "_b"))
    paired = paired[paired["level"].isin(list(levels)) & paired["metric"].isin(wanted)]
    rows = []
    for (structure, level, metric), grp in paired.groupby(
        ["structure", "level", "metric"], sort=False
    ):
        test = wilcoxon_paired(
            grp["value_a"], grp["value_b"], higher_is_better=HIGHER_IS_BETTER[metric]
        )
        rows.append({"structure": structure, "level": level, "metric": metric, **asdict(test)})
    columns = ["structure", "level", "metric", "n_pairs", "p_value", "median_diff", "direction"]
    return pd.DataFrame(rows, columns=columns)
