"""``run --report``: Dask's performance report is written (its bokeh dependency is installed)."""

from __future__ import annotations

from distributed import Client

from spineps_dask.cli.run import performance_report_to


def test_performance_report_is_written_as_html(tmp_path):
    """The report of a small computation is a non-empty HTML file: without bokeh, distributed
    fails only when the report is saved, after a whole cohort ran (seen in `spineps-dask demo`).
    """
    path = tmp_path / "report.html"
    client = Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0")
    with client, performance_report_to(path):
        assert client.submit(sum, [1, 2, 3]).result() == 6
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html.lower()
    assert len(html) > 1000


def test_no_report_path_means_no_report(tmp_path):
    """Without ``--report`` nothing is written."""
    with performance_report_to(None):
        pass
    assert list(tmp_path.iterdir()) == []
