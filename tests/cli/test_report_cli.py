"""``spineps-dask report`` on a real two-subject run with one bad scan: the page renders in
both formats, links only to PNGs that exist, lists the failed subject with its reason, and
its summary numbers are those of the store's tables."""

from __future__ import annotations

import io
import re
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.explore import open_cohort
from spineps_dask.io.cohort import ingest
from spineps_dask.labels import level_title
from spineps_dask.metrics.tables import format_mean_sd, summarize
from spineps_dask.phantom.cohort import write_bids_cohort
from tests.viz.cohort_run import BAD, GOOD, small_cohort_store

runner = CliRunner()
_LINKS = {"html": r'src="([^"]+)"', "md": r"!\[[^\]]*\]\(([^)]+)\)"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return small_cohort_store(tmp_path_factory)


def _report(store, out, fmt: str) -> str:
    result = runner.invoke(app, ["report", str(store), "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    page = out / f"report.{fmt}"
    assert str(page) in result.output
    return page.read_text(encoding="utf-8")


def _linked_pngs(text: str, fmt: str, out) -> list[str]:
    """Every image the page links to is a PNG file in the report folder that decodes."""
    links = re.findall(_LINKS[fmt], text)
    for rel in links:
        data = (out / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", rel
        assert Image.open(io.BytesIO(data)).size[0] > 100, rel
    return links


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_has_tables_and_pictures(store, tmp_path, fmt):
    """Status, failed subject (step and reason), cohort PNGs and one snapshot per finished
    subject, each referenced from the page; no temporary files left behind."""
    out = tmp_path / "rep"
    text = _report(store, out, fmt)
    links = _linked_pngs(text, fmt, out)
    assert {"figures/status.png", "figures/metrics.png", "figures/biomarkers.png"} <= set(links)
    assert {f"snapshots/{s}.png" for s in GOOD} <= set(links)
    assert f"snapshots/{BAD}.png" not in links
    failed = open_cohort(store).status().set_index("scan").loc[BAD]
    assert BAD in text and failed["step"] in text
    assert "axial thick-slice scan" in text  # the reason, as the manifest has it
    assert f"{len(GOOD) + 1} subjects: {len(GOOD)} done, 1 failed" in text
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_report_numbers_are_the_tables(store, tmp_path):
    """The metric summary shows each structure's mean ± SD as `summarize` computes it from the
    subjects' metric tables, and the biomarker table one row per measured level."""
    text = _report(store, tmp_path / "rep", "md")
    cohort = open_cohort(store)
    summary = summarize(cohort.table("metrics")[["scan", "structure", "level", "metric", "value"]])
    dsc = summary.set_index(["structure", "level", "metric"]).loc[("vertebra", "global", "DSC")]
    assert f"| Vertebra | global | ↑ DSC | {format_mean_sd(dsc['mean'], dsc['sd'])} |" in text
    bio_section = text.split("## Biomarkers per level")[1].split("##")[0]
    levels = set(cohort.table("biomarkers").level)
    rows = [
        line.split("|")[1].strip() for line in bio_section.splitlines() if line.startswith("| ")
    ]
    assert set(rows[1:]) == {level_title(x) for x in levels}  # header first; discs as C2-C3


@pytest.mark.slow
def test_report_without_metric_tables_says_so(store, tmp_path):
    """Finished subjects but no reference masks: the report says there are no metric tables
    and still shows biomarkers and snapshots."""
    copy = tmp_path / "store.zarr"
    shutil.copytree(store, copy)
    for table in copy.glob("sub-*/metrics.parquet"):
        table.unlink()
    out = tmp_path / "rep"
    text = _report(copy, out, "html")
    assert "No metric tables" in text
    assert not (out / "figures" / "metrics.png").exists()
    links = _linked_pngs(text, "html", out)
    assert "figures/biomarkers.png" in links and f"snapshots/{GOOD[0]}.png" in links


def test_report_prints_its_page_path_verbatim(store, tmp_path):
    """The path on stdout is the page's, whole: a long path is not wrapped at the terminal's
    width (it was, under pytest-xdist's longer temporary folders) and brackets in it are not
    taken for markup."""
    out = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-" * 2) / "rep[1]"
    result = runner.invoke(app, ["report", str(store), "--out", str(out), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert f"{out / 'report.md'}\n" in result.output


def test_report_of_a_store_nobody_ran_yet(tmp_path):
    """Ingested only: the report says nothing has finished (no tables, no snapshots) and
    still draws the status picture."""
    bids = tmp_path / "bids"
    write_bids_cohort(bids, subjects=1, seed=5, region="lumbar")
    ingest(bids, str(tmp_path / "store.zarr"))
    out = tmp_path / "rep"
    text = _report(tmp_path / "store.zarr", out, "md")
    assert "1 subject: 0 done, 0 failed, 0 skipped, 1 not run" in text
    assert "No metric tables" in text and "No biomarker tables" in text
    assert "No finished scan yet" in text
    assert _linked_pngs(text, "md", out) == ["figures/status.png"]


def test_report_refuses_a_folder_that_is_not_a_store(tmp_path):
    """A plain folder: exit code 2 and a message saying it is not a cohort store."""
    (tmp_path / "scans").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "scans"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "is not a cohort store" in " ".join(result.output.split())  # rich wraps lines
    assert not (tmp_path / "r").exists()


def test_report_on_a_store_that_does_not_exist_exits_2(tmp_path):
    """Issue 21 item 2: the mistyped store of a run is not created, so its report is an error
    too (exit 2, nothing written), not an empty page."""
    result = runner.invoke(
        app, ["report", str(tmp_path / "nostore.zarr"), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "is not a cohort store" in " ".join(result.output.split())
    assert not (tmp_path / "nostore.zarr").exists() and not (tmp_path / "r").exists()
