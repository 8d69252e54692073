"""Cohort plots draw what the tables hold: a box per level or structure, a point per subject,
levels in anatomical order; empty tables give a figure that says so instead of an error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineps_dask.explore import open_cohort
from spineps_dask.io.manifest import make_row
from spineps_dask.labels import level_title
from spineps_dask.metrics.structures import TITLES
from spineps_dask.viz.cohort import (
    PHASES,
    STATES,
    figure_png,
    level_order,
    plot_level_biomarkers,
    plot_metric_boxes,
    plot_status,
    subject_states,
)
from tests.viz.cohort_run import BAD, GOOD, small_cohort_store


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return open_cohort(small_cohort_store(tmp_path_factory))


def _ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def _points(ax) -> dict[str, np.ndarray]:
    """y values of the strip points, by the group each scatter was drawn for."""
    return {c.get_label(): np.sort(c.get_offsets()[:, 1]) for c in ax.collections}


@pytest.mark.parametrize(
    ("shuffled", "expected"),
    [
        (
            ["L1", "IVD C2", "C2", "S1", "IVD L5", "T12"],
            ["C2", "IVD C2", "T12", "L1", "IVD L5", "S1"],
        ),
        (["L6", "T13", "L1", "IVD T12", "T12"], ["T12", "IVD T12", "T13", "L1", "L6"]),
        (["global", "L2", "L2", "instance"], ["L2", "global", "instance"]),
    ],
)
def test_level_order_is_anatomical(shuffled, expected):
    """Vertebrae top to bottom, each disc right below its vertebra, T13/L6 in place, unknown
    names last; duplicates collapse."""
    assert level_order(shuffled) == expected


@pytest.mark.slow
def test_level_plot_has_a_box_per_level_with_every_subjects_value(cohort):
    """Body volume and disc height panels: one box per level present, in anatomical order, and
    the points are exactly the table's values at that level."""
    bio = cohort.table("biomarkers")
    fig = plot_level_biomarkers(bio)
    for ax, (structure, measure) in zip(
        fig.axes, [("body", "volume_mm3"), ("disc", "height_mm")], strict=True
    ):
        rows = bio[(bio.structure == structure) & (bio.measure == measure)]
        assert _ticks(ax) == [level_title(x) for x in level_order(rows.level)]  # C2-C3
        assert len(ax.collections) == rows.level.nunique()
        points = _points(ax)
        for level, values in rows.groupby("level")["value"]:
            np.testing.assert_allclose(points[level], np.sort(values.to_numpy()))
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_metric_plot_has_a_box_per_structure(cohort):
    """Dice / ASSD (global) and PQ (instance): one box per structure scored, one point per
    subject."""
    metrics = cohort.table("metrics")
    fig = plot_metric_boxes(metrics)
    for ax, (metric, level) in zip(
        fig.axes, [("DSC", "global"), ("ASSD", "global"), ("PQ", "instance")], strict=True
    ):
        rows = metrics[(metrics.metric == metric) & (metrics.level == level)]
        rows = rows[np.isfinite(rows.value)]
        assert sorted(_ticks(ax)) == sorted(TITLES[s] for s in rows.structure.unique())
        for structure, values in rows.groupby("structure")["value"]:
            np.testing.assert_allclose(_points(ax)[structure], np.sort(values.to_numpy()))


@pytest.mark.slow
def test_status_plot_counts_subjects_and_times_phases(cohort):
    """Bars hold the done / failed / skipped / not-run counts; a box per timed phase."""
    manifest = cohort.manifest
    fig = plot_status(manifest)
    bars, boxes = fig.axes
    heights = [int(p.get_height()) for p in bars.patches]
    assert dict(zip(STATES, heights, strict=True)) == {
        "done": len(GOOD),
        "failed": 1,
        "skipped": 0,
        "not run": 0,
    }
    timed = [p for p in PHASES if ((manifest.phase == p) & (manifest.status == "ok")).any()]
    assert _ticks(boxes) == timed
    ok_semantic = manifest[(manifest.phase == "semantic") & (manifest.status == "ok")]
    np.testing.assert_allclose(_points(boxes)["semantic"], np.sort(ok_semantic.seconds))
    states = subject_states(manifest).set_index("subject")
    assert states.loc[BAD, "step"] == "prepare" and "axial" in states.loc[BAD, "error"]


def test_subject_states_from_manifest_rows():
    """A scan refused at ingest is failed at ingest with its reason; an ingested subject with
    no segment row is 'not run'; segment ok is 'done'."""
    manifest = pd.DataFrame(
        [
            make_row("sub-a", "failed", error="not a NIfTI file", step="ingest"),
            make_row("sub-b", "ok"),
            make_row("sub-c", "ok"),
            make_row("sub-c", "ok", phase="segment"),
            make_row("sub-d", "ok"),
            make_row("sub-d", "failed", phase="segment", step="semantic", error="model"),
        ]
    )
    got = subject_states(manifest).set_index("subject")
    assert got["state"].to_dict() == {
        "sub-a": "failed",
        "sub-b": "not run",
        "sub-c": "done",
        "sub-d": "failed",
    }
    assert got.loc["sub-a", ["phase", "error"]].tolist() == ["ingest", "not a NIfTI file"]
    assert got.loc["sub-d", ["phase", "step"]].tolist() == ["segment", "semantic"]


def test_plots_of_empty_tables_still_render():
    """No subjects, biomarkers or metrics yet: each plot is a PNG that says there is nothing."""
    empty = pd.DataFrame()
    for fig in (
        plot_level_biomarkers(empty),
        plot_metric_boxes(empty),
        plot_status(pd.DataFrame(columns=["subject", "phase", "status", "seconds"])),
    ):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(t.startswith("no ") for t in texts), texts
        assert figure_png(fig)[:4] == b"\x89PNG"
