"""What a sweep hands back: the grid table, what ran, what failed, and the files it writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spineps_dask.evaluate import write_summary
from spineps_dask.io.atomic import atomic_write, write_file
from spineps_dask.io.tables import write_table
from spineps_dask.sweep.driver import stage_counts
from spineps_dask.sweep.plot import plot_sweep
from spineps_dask.sweep.tables import compare_to_baseline, comparison_markdown, grid_summary

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """A finished sweep.

    ``metrics``: one row per subject x setting x structure x level x metric with the setting
    columns; ``stages``: one row per stage execution of this invocation (subject, stage, key,
    seconds, worker) — the semantic rows show the reuse; ``failures``: subject, setting, step,
    error; ``settings``: one row per grid point (label, id, fields); ``baseline``: its label.
    """

    metrics: pd.DataFrame
    stages: pd.DataFrame
    failures: pd.DataFrame
    settings: pd.DataFrame
    baseline: str

    @property
    def order(self) -> list[str]:
        """Setting labels in grid order."""
        return list(self.settings["setting"])

    def runs(self, stage: str) -> dict[str, int]:
        """How often ``stage`` ran per subject in this invocation (``semantic``: the reuse)."""
        return stage_counts(self.stages.to_dict("records"), stage)

    def summary(self) -> pd.DataFrame:
        """Mean ± SD per setting, structure, level and metric."""
        return grid_summary(self.metrics, order=self.order)

    def comparisons(self) -> pd.DataFrame:
        """Wilcoxon signed-rank test of each setting against the baseline."""
        return compare_to_baseline(self.metrics, self.baseline)

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write every table, the summaries (CSV + Markdown) and ``metrics.png`` under ``out``."""
        out = Path(out)
        paths = {
            "metrics": write_table(self.metrics, out / "metrics.parquet"),
            "stages": write_table(self.stages, out / "stages.parquet"),
        }
        for name, df in (("failures", self.failures), ("settings", self.settings)):
            paths[name] = write_file(df.to_csv(index=False), out / f"{name}.csv")
        paths["summary"], paths["summary_md"] = write_summary(self.summary(), out / "summary")
        comparisons = self.comparisons()
        paths["comparisons"] = write_file(comparisons.to_csv(index=False), out / "comparisons.csv")
        paths["comparisons_md"] = write_file(
            comparison_markdown(comparisons), out / "comparisons.md"
        )
        if len(self.metrics):
            fig = plot_sweep(self.metrics, order=self.order)
            paths["plot"] = atomic_write(
                out / "metrics.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png")
            )
        logger.info("sweep outputs in %s", out)
        return paths
