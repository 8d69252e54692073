"""The sweep's tables: per-part Parquet files, the tidy grid table, summary and comparisons.

Each finished subject x setting is written at once to ``parts/<setting id>/<subject>.parquet``
(so an interrupted sweep resumes with the parts it has); the grid table is those parts with the
setting columns added. Summary and Wilcoxon tests reuse `spineps_dask.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spineps_dask.io.tables import read_table, write_table
from spineps_dask.metrics.stats import compare_runs
from spineps_dask.metrics.tables import KEY_COLUMNS, summarize
from spineps_dask.sweep.settings import Setting

PARTS = "parts"
_DIRECTION = {"A better": "setting better", "B better": "baseline better"}


def part_path(out: Path, setting_id: str, subject: str) -> Path:
    """Where one subject x setting's metric rows are kept."""
    return out / PARTS / setting_id / f"{subject}.parquet"


def write_part(out: Path, setting_id: str, subject: str, table: pd.DataFrame) -> Path:
    """Keep one part's rows (atomic), so a resumed sweep does not recompute it."""
    return write_table(table, part_path(out, setting_id, subject))


def done_parts(out: Path, settings: Sequence[Setting]) -> set[tuple[str, str]]:
    """``(subject, setting id)`` pairs already on disk."""
    found = set()
    for s in settings:
        for path in (out / PARTS / s.id).glob("*.parquet"):
            found.add((path.stem, s.id))
    return found


def grid_table(
    out: Path, settings: Sequence[Setting], labels: Sequence[str], subjects: Sequence[str]
) -> pd.DataFrame:
    """All parts of ``subjects`` as one tidy table with ``setting`` (label), ``setting_id``, one
    column per setting field (``n4, step_size, folds, postprocess, merge.*``) and ``models``."""
    frames = []
    for s, label in zip(settings, labels, strict=True):
        for subject in subjects:
            path = part_path(out, s.id, subject)
            if path.is_file():
                df = read_table(path)
                df["setting"], df["setting_id"] = label, s.id
                for col, value in s.columns().items():
                    df[col] = value
                df["models"] = s.models
                frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "value", "setting", "setting_id"])
    return pd.concat(frames, ignore_index=True)


def grid_summary(metrics: pd.DataFrame, *, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean ± SD over subjects per setting, structure, level and metric (paper-style)."""
    part = metrics[["setting", *KEY_COLUMNS, "value"]]
    summary = summarize(part)
    if order is not None:
        rank = {label: i for i, label in enumerate(order)}
        summary = summary.sort_values("setting", key=lambda c: c.map(rank), kind="stable")
    return summary.reset_index(drop=True)


def compare_to_baseline(metrics: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Wilcoxon signed-rank test of every setting against ``baseline``, paired over subjects.

    ``median_diff`` is setting minus baseline; ``direction`` says which is better for that
    metric (higher Dice / PQ, lower ASSD), ``no difference`` when every pair is equal.
    """
    base = metrics[metrics["setting"] == baseline]
    rows = []
    for label in dict.fromkeys(metrics["setting"]):
        if label == baseline:
            continue
        test = compare_runs(metrics[metrics["setting"] == label], base)
        test.insert(0, "baseline", baseline)
        test.insert(0, "setting", label)
        rows.append(test)
    columns = ["setting", "baseline", "structure", "level", "metric", "n_pairs", "p_value"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "median_diff", "direction"])
    out = pd.concat(rows, ignore_index=True)
    out["direction"] = out["direction"].map(lambda d: _DIRECTION.get(d, d))
    return out


def comparison_markdown(comparisons: pd.DataFrame, *, digits: int = 3) -> str:
    """The comparisons as a Markdown table (p-value, median difference, direction)."""
    header = ["Setting", "vs", "Structure", "Level", "Metric", "n", "p", "median diff", "better"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in comparisons.itertuples(index=False):
        cells = [
            r.setting,
            r.baseline,
            r.structure,
            r.level,
            r.metric,
            str(r.n_pairs),
            f"{r.p_value:.3g}",
            f"{r.median_diff:+.{digits}f}",
            r.direction,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
