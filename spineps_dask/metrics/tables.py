"""Tidy evaluation tables: one row per subject x structure x level x metric, and their summary.

Levels: ``"global"`` (a whole structure of the semantic mask, e.g. all vertebrae as one mask),
``"instance"`` (a subject's instance group: RQ/SQ/PQ, mean Dice/ASSD of matched instances,
TP/FP/FN), or an instance name such as ``"L3"`` / ``"IVD L3"`` (one matched reference instance).
Structures absent from both prediction and reference produce no rows. Files: the tables are
written with `spineps_dask.io.tables`, summaries with `spineps_dask.evaluate.write_summary`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spineps_dask.errors import InputError
from spineps_dask.keys import ID_COLUMNS, identity
from spineps_dask.labels import VALID_INSTANCE, VALID_SEMANTIC, check_labels, instance_name
from spineps_dask.metrics.overlap import dice_per_label
from spineps_dask.metrics.panoptic import panoptic_quality
from spineps_dask.metrics.structures import (
    GLOBAL_STRUCTURES,
    INSTANCE_GROUPS,
    TITLES,
    Structure,
)
from spineps_dask.metrics.surface import assd_per_label

logger = logging.getLogger(__name__)

#: True where a higher value is better (paper tables 2-5 arrows); TP/FP/FN are counts.
HIGHER_IS_BETTER: dict[str, bool] = {
    "DSC": True,
    "IoU": True,
    "RQ": True,
    "SQ": True,
    "PQ": True,
    "ASSD": False,
    "ID": True,
}
#: What one row is about: the scan (its key, `spineps_dask.keys`), structure, level, metric.
#: Rows also carry the scan's person and visit (``subject``, ``session``: `ID_COLUMNS`).
KEY_COLUMNS: tuple[str, ...] = ("scan", "structure", "level", "metric")
_NOT_CONTEXT = (*ID_COLUMNS, *KEY_COLUMNS)
_LEVEL_ORDER = {"global": 0, "instance": 1}
_METRIC_ORDER = ("DSC", "IoU", "RQ", "SQ", "PQ", "ASSD", "ID", "TP", "FP", "FN")
#: The sacrum is named by the semantic mask, not by the vertebra naming; ID leaves it out.
_S1 = 26


def _layers(structures: Sequence[Structure]) -> list[list[Structure]]:
    """Split structures into groups with disjoint labels, so each group is one label map."""
    layers: list[list[Structure]] = []
    for st in structures:
        for layer in layers:
            if not any(set(st.labels) & set(o.labels) for o in layer):
                layer.append(st)
                break
        else:
            layers.append([st])
    return layers


def _remap(labelmap: np.ndarray, layer: Sequence[Structure]) -> np.ndarray:
    top = max(int(labelmap.max(initial=0)), *(max(s.labels) for s in layer))
    lut = np.zeros(top + 1, dtype=np.uint8)
    for i, st in enumerate(layer, start=1):
        lut[list(st.labels)] = i
    return lut[labelmap]


def global_rows(
    pred_semantic: np.ndarray, ref_semantic: np.ndarray, *, spacing: Sequence[float]
) -> list[dict[str, Any]]:
    """Dice and ASSD of each whole structure (``GLOBAL_STRUCTURES``) of the semantic masks."""
    rows: list[dict[str, Any]] = []
    for layer in _layers(GLOBAL_STRUCTURES):
        pred, ref = _remap(pred_semantic, layer), _remap(ref_semantic, layer)
        dsc = dice_per_label(pred, ref, labels=list(range(1, len(layer) + 1)))
        dist = assd_per_label(pred, ref, spacing, labels=list(range(1, len(layer) + 1)))
        for i, st in enumerate(layer, start=1):
            if np.isnan(dsc[i]):  # absent from both masks
                continue
            rows.append({"structure": st.name, "level": "global", "metric": "DSC", "value": dsc[i]})
            rows.append(
                {"structure": st.name, "level": "global", "metric": "ASSD", "value": dist[i]}
            )
    return rows


def instance_rows(
    pred_instance: np.ndarray, ref_instance: np.ndarray, *, spacing: Sequence[float]
) -> list[dict[str, Any]]:
    """Per instance group: RQ/SQ/PQ, mean Dice/ASSD of matches, counts; then each match."""
    rows: list[dict[str, Any]] = []
    for group in INSTANCE_GROUPS:
        res = panoptic_quality(pred_instance, ref_instance, spacing=spacing, labels=group.labels)
        if res.n_ref + res.n_pred == 0:
            continue
        summary = {
            "RQ": res.rq,
            "SQ": res.sq,
            "PQ": res.pq,
            "DSC": res.sq_dsc,
            "ASSD": res.sq_assd,
            "TP": res.tp,
            "FP": res.fp,
            "FN": res.fn,
        }
        if group.name == "vertebra":
            summary["ID"] = identification_rate(res.matches, ref_instance, group.labels)
        for metric, value in summary.items():
            rows.append(
                {"structure": group.name, "level": "instance", "metric": metric, "value": value}
            )
        for m in res.matches:
            for metric, value in (("DSC", m.dice), ("IoU", m.iou), ("ASSD", m.assd)):
                rows.append(
                    {
                        "structure": group.name,
                        "level": instance_name(m.ref_label),
                        "metric": metric,
                        "value": value,
                    }
                )
    return rows


def identification_rate(
    matches: Sequence[Any], ref_instance: np.ndarray, labels: Sequence[int]
) -> float:
    """Share of reference vertebrae (sacrum left out) matched by a prediction with the same
    name: a vertebra missed, or found but misnamed, counts against it (NaN without any).

    Examples
    --------
    >>> from spineps_dask.metrics.panoptic import InstanceMatch
    >>> ref = np.array([[[20, 21, 22]]])
    >>> m = [InstanceMatch(20, 20, 1, 1), InstanceMatch(21, 22, 1, 1)]
    >>> identification_rate(m, ref, (20, 21, 22))
    0.3333333333333333
    """
    present = set(np.flatnonzero(np.bincount(np.asarray(ref_instance).ravel())).tolist())
    refs = [v for v in labels if v in present and v != _S1]
    if not refs:
        return float("nan")
    right = sum(1 for m in matches if m.ref_label == m.pred_label and m.ref_label in refs)
    return right / len(refs)


def _context_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def evaluate_subject(
    pred_semantic: np.ndarray | None,
    pred_instance: np.ndarray | None,
    ref_semantic: np.ndarray | None,
    ref_instance: np.ndarray | None,
    *,
    spacing: Sequence[float],
    subject: str,
    **context: Any,
) -> pd.DataFrame:
    """All metrics of one scan as a tidy table: of each mask kind present on both sides.

    Parameters
    ----------
    pred_semantic, pred_instance, ref_semantic, ref_instance
        Integer label maps of one shape ``(X, Y, Z)`` in the SPINEPS scheme (``labels.py``).
        A kind missing on either side (None) is not scored: semantic masks alone give the
        global rows, instance masks alone the instance rows.
    spacing
        Voxel size (mm) per array axis.
    subject
        The scan's key, e.g. ``"sub-001_ses-1_chunk-2"`` (`spineps_dask.keys`).
    **context
        Extra constant columns (``run_id``, ``model_version``, ``params``...); non-scalar values
        are stored as sorted JSON so the table stays Parquet-friendly.

    Returns
    -------
    pandas.DataFrame
        Columns ``scan, subject, session, structure, level, metric, value`` and one per
        context key.

    Raises
    ------
    InputError
        No kind is present on both sides, shapes differ, or a mask holds labels outside the
        SPINEPS scheme.
    """
    candidates = {
        "predicted semantic mask": (pred_semantic, VALID_SEMANTIC),
        "predicted instance mask": (pred_instance, VALID_INSTANCE),
        "reference semantic mask": (ref_semantic, VALID_SEMANTIC),
        "reference instance mask": (ref_instance, VALID_INSTANCE),
    }
    semantic = pred_semantic is not None and ref_semantic is not None
    instance = pred_instance is not None and ref_instance is not None
    if not (semantic or instance):
        missing = [name for name, (arr, _) in candidates.items() if arr is None]
        raise InputError(
            f"nothing to score: missing {', '.join(missing)} (a semantic or an instance mask "
            "is needed on both sides)",
            subject=subject,
            step="evaluate",
        )
    maps = {
        name: (arr, valid)
        for name, (arr, valid) in candidates.items()
        if arr is not None and (semantic if "semantic" in name else instance)
    }
    shapes = {name: np.shape(arr) for name, (arr, _) in maps.items()}
    if len(set(shapes.values())) != 1:
        raise InputError(
            f"masks differ in shape: {shapes}; resample predictions to the reference grid",
            subject=subject,
            step="evaluate",
        )
    for name, (arr, valid) in maps.items():
        check_labels(arr, valid, what=name, subject=subject)
    rows = []
    if semantic:
        rows += global_rows(np.asarray(pred_semantic), np.asarray(ref_semantic), spacing=spacing)
    if instance:
        rows += instance_rows(np.asarray(pred_instance), np.asarray(ref_instance), spacing=spacing)
    df = pd.DataFrame(rows, columns=["structure", "level", "metric", "value"])
    df["value"] = df["value"].astype(float)
    for i, (col, value) in enumerate(identity(subject).items()):
        df.insert(i, col, pd.Series([value] * len(df), dtype="object"))
    for key, value in context.items():
        df[key] = _context_value(value)
    logger.debug("evaluated %s: %d rows", subject, len(df))
    return df


def summarize(df: pd.DataFrame, *, levels: Sequence[str] = ("global", "instance")) -> pd.DataFrame:
    """Mean and SD over scans per (context...,) structure, level and metric, like the paper.

    Non-finite values (NaN, and ``inf`` ASSD when a structure is missing on one side) are left
    out of mean and SD and counted in ``n_nonfinite``, so they are visible but do not turn the
    mean into ``inf``. SD is the sample SD (ddof 1).
    """
    context = [c for c in df.columns if c not in (*_NOT_CONTEXT, "value")]
    part = df[df["level"].isin(list(levels))].copy()
    finite = np.isfinite(part["value"].to_numpy(dtype=float))
    part["finite"] = np.where(finite, part["value"], np.nan)
    part["nonfinite"] = ~finite
    keys = [*context, "structure", "level", "metric"]
    out = (
        part.groupby(keys, sort=False, dropna=False)
        .agg(
            mean=("finite", "mean"),
            sd=("finite", "std"),
            n=("finite", "count"),
            n_nonfinite=("nonfinite", "sum"),
        )
        .reset_index()
    )
    out["n_nonfinite"] = out["n_nonfinite"].astype(int)
    return _ordered(out)


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    order: dict[str, int] = {}
    for st in (*GLOBAL_STRUCTURES, *INSTANCE_GROUPS):
        order.setdefault(st.name, len(order))
    metric_order = {m: i for i, m in enumerate(_METRIC_ORDER)}
    key = summary.assign(
        _l=summary["level"].map(lambda x: _LEVEL_ORDER.get(x, 2)),
        _s=summary["structure"].map(lambda x: order.get(x, len(order))),
        _m=summary["metric"].map(lambda x: metric_order.get(x, len(metric_order))),
    )
    context = [c for c in summary.columns if c not in (*_NOT_CONTEXT, "mean", "sd", "n")]
    context = [c for c in context if c != "n_nonfinite"]
    key = key.sort_values([*context, "_l", "_s", "level", "_m", "metric"], kind="stable")
    return key.drop(columns=["_l", "_s", "_m"]).reset_index(drop=True)


def _fmt(x: float, digits: int) -> str:
    return "—" if not np.isfinite(x) else f"{x:.{digits}f}"


def format_mean_sd(mean: float, sd: float, *, digits: int = 3) -> str:
    """``'0.929 ± 0.082'`` as in the paper's tables (``—`` for a missing value)."""
    return f"{_fmt(mean, digits)} ± {_fmt(sd, digits)}"


def metric_label(metric: str) -> str:
    """The metric name with the paper's arrow: ``'↑ DSC'``, ``'↓ ASSD'``, ``'TP'``."""
    better = HIGHER_IS_BETTER.get(metric)
    return metric if better is None else ("↑ " if better else "↓ ") + metric


def summary_cells(summary: pd.DataFrame, *, digits: int = 3) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the summary as the paper prints it: structure title, level,
    metric (with ↑/↓), mean ± SD, n (any context columns first). Shared by every renderer."""
    context = [
        c
        for c in summary.columns
        if c not in ("structure", "level", "metric", "mean", "sd", "n", "n_nonfinite")
    ]
    header = [*context, "Structure", "Level", "Metric", "Mean ± SD", "n"]
    rows = []
    for row in summary.itertuples(index=False):
        r: Mapping[str, Any] = row._asdict()
        n = f"{r['n']}" + (f" (+{r['n_nonfinite']} n/a)" if r["n_nonfinite"] else "")
        rows.append(
            [
                *(str(r[c]) for c in context),
                TITLES.get(r["structure"], r["structure"]),
                r["level"],
                metric_label(r["metric"]),
                format_mean_sd(r["mean"], r["sd"], digits=digits),
                n,
            ]
        )
    return header, rows


def summary_markdown(summary: pd.DataFrame, *, digits: int = 3) -> str:
    """The summary as a Markdown table: structure, level, metric (with ↑/↓), mean ± SD, n."""
    header, rows = summary_cells(summary, digits=digits)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"
