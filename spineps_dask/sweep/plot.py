"""Box plots of a sweep: one group per structure, one box per setting, spread over subjects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spineps_dask.metrics.structures import TITLES
from spineps_dask.metrics.tables import metric_label

#: The panels of the sweep's PNG: whole-structure Dice, and panoptic quality per group.
PANELS: tuple[tuple[str, str], ...] = (("global", "DSC"), ("instance", "PQ"))


def box_axes(
    ax: Any, metrics: pd.DataFrame, *, level: str, metric: str, order: Sequence[str] | None = None
) -> Any:
    """Draw ``metric`` at ``level`` on ``ax``: x = structure, one coloured box per setting."""
    part = metrics[(metrics["level"] == level) & (metrics["metric"] == metric)]
    part = part[np.isfinite(part["value"].to_numpy(dtype=float))]
    settings = list(order or dict.fromkeys(metrics["setting"]))
    structures = list(dict.fromkeys(part["structure"]))
    width = 0.8 / max(1, len(settings))
    colours = [f"C{i % 10}" for i in range(len(settings))]
    for j, label in enumerate(settings):
        data = [part[(part.structure == s) & (part.setting == label)]["value"] for s in structures]
        pos = np.arange(len(structures)) - 0.4 + width * (j + 0.5)
        keep = [i for i, d in enumerate(data) if len(d)]
        if not keep:
            continue
        box = ax.boxplot(
            [data[i] for i in keep],
            positions=pos[keep],
            widths=width * 0.9,
            patch_artist=True,
            manage_ticks=False,
            medianprops={"color": "black"},
        )
        for patch in box["boxes"]:
            patch.set_facecolor(colours[j])
            patch.set_alpha(0.6)
        ax.plot([], [], "s", color=colours[j], label=label)
    ax.set_xticks(np.arange(len(structures)))
    ax.set_xticklabels([TITLES.get(s, s) for s in structures], rotation=30, ha="right")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{metric} ({level})")
    return ax


def plot_sweep(
    metrics: pd.DataFrame,
    *,
    panels: Sequence[tuple[str, str]] = PANELS,
    order: Sequence[str] | None = None,
) -> Any:
    """A matplotlib Figure with one panel per ``(level, metric)``; legend names the settings.

    Built without pyplot, so it needs no display (CLI, workers) and still shows in Jupyter.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(panels), 5.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (level, metric) in zip(axes[0], panels, strict=True):
        box_axes(ax, metrics, level=level, metric=metric, order=order)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels) or 1))
    return fig
