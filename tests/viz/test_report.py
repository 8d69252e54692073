"""The report reads as a page (issue 21 item 13): inline code in the notes is HTML code, not
raw backticks; discs are named by their two vertebrae; the ASSD axis says its unit."""

from __future__ import annotations

import pandas as pd

from spineps_dask.viz.cohort import plot_metric_boxes
from spineps_dask.viz.report import Report, Section, TextTable, _biomarker_section, render_html


def test_html_shows_inline_code_as_code_not_backticks():
    report = Report(
        "t",
        "now",
        [Section("s", notes=["run `spineps-dask run STORE` <again>"], tables=[])],
        files={},
    )
    page = render_html(report)
    assert "<code>spineps-dask run STORE</code>" in page and "`" not in page
    assert "&lt;again&gt;" in page
    table = TextTable(["a"], [["`x`"]])
    assert "<code>x</code>" in render_html(Report("t", "n", [Section("s", tables=[table])], {}))


def _biomarkers() -> pd.DataFrame:
    rows = []
    for scan, value in (("sub-01", 5.0), ("sub-02", 6.0)):
        rows += [
            {"scan": scan, "subject": scan, "session": None, "level": "C2", "structure": "body",
             "measure": "volume_mm3", "value": 900.0 + value},
            {"scan": scan, "subject": scan, "session": None, "level": "IVD C2",
             "structure": "disc", "measure": "height_mm", "value": value},
            {"scan": scan, "subject": scan, "session": None, "level": "IVD L5",
             "structure": "disc", "measure": "height_mm", "value": value + 4},
        ]  # fmt: skip
    return pd.DataFrame(rows)


def test_disc_rows_are_named_by_their_two_vertebrae():
    section = _biomarker_section(_biomarkers(), files={})
    levels = [row[0] for row in section.tables[0].rows]
    assert levels == ["C2", "C2-C3", "L5-S1"]
    assert not any("IVD" in level for level in levels)


def test_assd_axis_says_millimetres():
    metrics = pd.DataFrame(
        {
            "scan": ["sub-01", "sub-02"] * 2,
            "structure": ["vertebra"] * 4,
            "level": ["global"] * 4,
            "metric": ["DSC", "DSC", "ASSD", "ASSD"],
            "value": [0.9, 0.8, 0.5, 0.7],
        }
    )
    fig = plot_metric_boxes(metrics, panels=(("DSC", "global"), ("ASSD", "global")))
    assert [ax.get_ylabel() for ax in fig.axes] == ["DSC", "ASSD (mm)"]
