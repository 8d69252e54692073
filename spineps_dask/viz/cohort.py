"""Cohort plots: biomarkers per level, metrics per structure, and what the run did.

Each function takes the tables `open_cohort` gives (``table("biomarkers")``,
``table("metrics")``, ``manifest``) and returns a matplotlib ``Figure`` that renders on a
headless worker or in CI; `figure_png` turns one into PNG bytes.
Figures are built without pyplot (rendered by Agg on save), so nothing changes the caller's
matplotlib backend and a notebook shows a returned figure inline. Levels are drawn
in anatomical order (C1 .. L6, then S1), each disc (``IVD X`` in the tables) right below its
vertebra ``X`` and named by its two vertebrae (``C2-C3``, `labels.level_title`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from spineps_dask.io.atomic import write_file
from spineps_dask.keys import identity
from spineps_dask.labels import VERTEBRA_IDS, level_title, vertebra_sequence
from spineps_dask.metrics.structures import TITLES

#: Phases whose seconds the status plot shows, in the order a subject goes through them.
PHASES: tuple[str, ...] = (
    "ingest",
    "prepare",
    "semantic",
    "instance",
    "assemble",
    "label",
    "reduce",
)
#: Subject states of `subject_states`, in the order they are counted.
STATES: tuple[str, ...] = ("done", "failed", "skipped", "not run")
#: (metric, level) per panel of `plot_metric_boxes`: global Dice and ASSD of the semantic
#: structures, panoptic quality of the instance groups (the paper's headline numbers).
METRIC_PANELS: tuple[tuple[str, str], ...] = (
    ("DSC", "global"),
    ("ASSD", "global"),
    ("PQ", "instance"),
)
#: Units of the metrics that have one (the others are ratios in [0, 1] or counts).
METRIC_UNITS: dict[str, str] = {"ASSD": "mm"}
#: (structure, measure, axis label) of the two panels of `plot_level_biomarkers`.
LEVEL_PANELS: tuple[tuple[str, str, str], ...] = (
    ("body", "volume_mm3", "vertebral body volume (mm³)"),
    ("disc", "height_mm", "disc height (mm)"),
)
_RANK = {v: i for i, v in enumerate(vertebra_sequence(has_t13=True, has_l6=True))}
_DISC_PREFIX = "IVD "


def _level_key(level: str) -> tuple[float, str]:
    """Sort key: a vertebra's cranio-caudal rank, a disc half a step below its vertebra."""
    name, shift = (
        (level[len(_DISC_PREFIX) :], 0.5) if level.startswith(_DISC_PREFIX) else (level, 0)
    )
    vid = VERTEBRA_IDS.get(name)
    if vid is None:  # not a level name: after every level, alphabetically
        return (len(_RANK) + 1.0, level)
    return (_RANK[vid] + shift, level)


def level_order(levels: Iterable[str]) -> list[str]:
    """Distinct level names (``'L3'``, ``'IVD L3'``) in anatomical order, top to bottom."""
    return sorted({str(x) for x in levels}, key=_level_key)


def figure_png(fig: Figure, path: str | Path | None = None, *, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig`` (and an atomic file write when ``path`` is given)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if path is not None:
        write_file(data, path)
    return data


def _box_strip(
    ax: Axes,
    groups: Sequence[tuple[str, np.ndarray]],
    *,
    rotation: int = 90,
    seed: int = 0,
    title: Callable[[str], str] = str,
) -> None:
    """One box per group with its points jittered on top (each point's group as its label;
    the tick shows ``title(group)``)."""
    rng = np.random.default_rng(seed)
    names = [title(name) for name, _ in groups]
    values = [vals for _, vals in groups]
    ax.boxplot(values, positions=range(len(groups)), widths=0.6, showfliers=False)
    for pos, (name, vals) in enumerate(groups):
        x = pos + rng.uniform(-0.15, 0.15, size=len(vals))
        ax.scatter(x, vals, s=12, alpha=0.7, color="tab:blue", zorder=3, label=name)
    ax.set_xticks(range(len(groups)), names, rotation=rotation)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_level_measure(
    table: pd.DataFrame, *, structure: str, measure: str, ax: Axes, ylabel: str | None = None
) -> Axes:
    """Box and points per level of one biomarker (rows of ``table`` with that structure and
    measure), levels in anatomical order; finite values only."""
    rows = _finite(table, structure=structure, measure=measure) if len(table) else table
    if not len(rows):
        _empty(ax, f"no {structure} {measure} values")
    else:
        by = rows.groupby("level")["value"]
        groups = [(lv, by.get_group(lv).to_numpy()) for lv in level_order(rows["level"])]
        _box_strip(ax, groups, title=level_title)  # discs as C2-C3
    ax.set_ylabel(ylabel or f"{structure} {measure}")
    return ax


def plot_level_biomarkers(
    table: pd.DataFrame, *, panels: Sequence[tuple[str, str, str]] = LEVEL_PANELS
) -> Figure:
    """Vertebral body volume and disc height per level across the cohort (one panel each)."""
    fig = Figure(figsize=(6 * len(panels), 4.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (structure, measure, label) in zip(axes[0], panels, strict=True):
        plot_level_measure(table, structure=structure, measure=measure, ax=ax, ylabel=label)
    fig.suptitle(f"per-level biomarkers, {count_scans(table['scan'] if len(table) else [])}")
    fig.tight_layout()
    return fig


def plot_metric_boxes(
    metrics: pd.DataFrame, *, panels: Sequence[tuple[str, str]] = METRIC_PANELS
) -> Figure:
    """Box and points per structure for each (metric, level) panel, e.g. global Dice.

    One point per subject; structures in the order of the paper's tables; infinite ASSD (a
    structure missing on one side) is left out, as in `metrics.tables.summarize`.
    """
    fig = Figure(figsize=(5 * len(panels), 4.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    order = {name: i for i, name in enumerate(TITLES)}
    for ax, (metric, level) in zip(axes[0], panels, strict=True):
        rows = _finite(metrics, metric=metric, level=level) if len(metrics) else metrics
        if not len(rows):
            _empty(ax, f"no {level} {metric} values")
        else:
            names = sorted(rows["structure"].unique(), key=lambda s: (order.get(s, len(order)), s))
            by = rows.groupby("structure")["value"]
            _box_strip(ax, [(s, by.get_group(s).to_numpy()) for s in names])
            ax.set_xticks(range(len(names)), [TITLES.get(s, s) for s in names], rotation=90)
        unit = METRIC_UNITS.get(metric)
        ax.set_title(f"{metric} ({level})")
        ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    fig.suptitle(f"metrics per structure, {count_scans(metrics['scan'] if len(metrics) else [])}")
    fig.tight_layout()
    return fig


def count_scans(keys: Iterable[str]) -> str:
    """``'4 scans of 2 subjects'`` (or ``'3 subjects'`` when each has one scan) for scan keys."""
    scans = set(keys)
    people = {identity(k)["subject"] for k in scans}
    noun = "subject" if len(people) == 1 else "subjects"
    if len(scans) == len(people):
        return f"{len(people)} {noun}"
    return f"{len(scans)} scans of {len(people)} {noun}"


def _finite(df: pd.DataFrame, **equal: str) -> pd.DataFrame:
    mask = np.isfinite(df["value"].to_numpy(dtype=float))
    for col, val in equal.items():
        mask &= (df[col] == val).to_numpy()
    return df[mask]


def subject_states(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per subject of the manifest: state (``STATES``), failing phase, step, error.

    A subject whose scan could not be ingested is ``failed`` at ``ingest``; an ingested one
    that no run has reached yet is ``not run``.
    """
    cols = ["subject", "state", "phase", "step", "error"]
    if manifest.empty:
        return pd.DataFrame(columns=cols)
    # Column-wise, not a lookup per subject: 100 000 subjects in well under a second (issue 19).
    rows = manifest[manifest["phase"].isin(["ingest", "segment"])]
    fields = ["subject", "status", "step", "error"]
    ing, seg = (
        rows.loc[rows["phase"] == p, fields].drop_duplicates("subject").set_index("subject")
        for p in ("ingest", "segment")
    )
    t = pd.DataFrame(index=pd.Index(sorted(rows["subject"].unique()), name="subject"))
    t = t.join(ing.add_suffix("_i")).join(seg.add_suffix("_s"))
    ing_failed = (t["status_i"] == "failed").to_numpy()
    not_run = ~ing_failed & t["status_s"].isna().to_numpy()
    seg_failed = ~ing_failed & ~not_run & (t["status_s"] == "failed").to_numpy()
    rest = ~(ing_failed | not_run | seg_failed)

    def pick(*cases: tuple[np.ndarray, object]) -> np.ndarray:
        """None, except where a case's mask holds: its value (one, or one per subject)."""
        out = np.full(len(t), None, dtype=object)
        for mask, value in cases:
            out[mask] = value[mask] if isinstance(value, np.ndarray) else value
        return out

    ing_step = t["step_i"].astype(object).to_numpy()
    ing_step = np.where(pd.isna(ing_step) | (ing_step == ""), "ingest", ing_step)
    seg_state = np.where(t["status_s"] == "ok", "done", t["status_s"].astype(object))
    return pd.DataFrame(
        {
            "subject": t.index.to_numpy(dtype=object),
            "state": pick(
                (ing_failed, "failed"),
                (not_run, "not run"),
                (seg_failed, "failed"),
                (rest, seg_state),
            ),
            "phase": pick((ing_failed, "ingest"), (seg_failed, "segment")),
            "step": pick(
                (ing_failed, ing_step),
                (seg_failed, t["step_s"].astype(object).to_numpy()),
            ),
            "error": pick(
                (ing_failed, t["error_i"].astype(object).to_numpy()),
                (seg_failed, t["error_s"].astype(object).to_numpy()),
            ),
        },
        columns=cols,
    )


def phase_seconds(manifest: pd.DataFrame) -> dict[str, np.ndarray]:
    """Seconds per subject of each phase in ``PHASES`` that has any (ok rows only)."""
    if manifest.empty:
        return {}
    ok = manifest[(manifest["status"] == "ok") & manifest["seconds"].notna()]
    out = {p: ok.loc[ok["phase"] == p, "seconds"].to_numpy(dtype=float) for p in PHASES}
    return {p: v for p, v in out.items() if v.size}


def plot_status(manifest: pd.DataFrame) -> Figure:
    """Subjects per state (bars, counts written on them) and seconds per phase (boxes)."""
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.6))
    states = subject_states(manifest)
    counts = [int((states["state"] == s).sum()) for s in STATES]
    bars = left.bar(STATES, counts, color=["tab:green", "tab:red", "tab:grey", "lightgrey"])
    left.bar_label(bars, labels=[str(c) for c in counts])
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.margins(y=0.15)
    left.set_ylabel("scans")
    left.set_title(count_scans(states["subject"]))
    seconds = phase_seconds(manifest)
    if seconds:
        _box_strip(right, list(seconds.items()), rotation=0)
        right.set_ylabel("seconds per subject")
        right.set_title("time per phase")
    else:
        _empty(right, "no timed phases yet")
    fig.tight_layout()
    return fig
