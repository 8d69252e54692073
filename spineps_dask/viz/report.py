"""A cohort report: summary tables, cohort plots and the snapshot gallery, as HTML or Markdown.

Layers (style rule 1): `build_report` (cohort -> `Report`: text tables, notes and the PNG bytes
it shows) -> `render_html` / `render_markdown` (report -> text) -> `write_report` (store URL ->
files). The pictures are PNG files next to the page (``figures/``, ``snapshots/``) with relative
links, for both formats: Markdown cannot embed images, the PNGs are wanted on their own (slides,
papers), and a gallery of thousands of base64 snapshots would make one page too heavy for a
browser. The folder is self-contained; move or zip it whole.
"""

from __future__ import annotations

import html
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from spineps_dask.errors import StoreError
from spineps_dask.explore import Cohort, open_cohort
from spineps_dask.io._urls import redact_url
from spineps_dask.io.atomic import write_file
from spineps_dask.keys import ID_COLUMNS
from spineps_dask.labels import level_title
from spineps_dask.metrics.tables import KEY_COLUMNS, format_mean_sd, summarize, summary_cells
from spineps_dask.viz import cohort as plots

logger = logging.getLogger(__name__)

Format = Literal["html", "md"]
#: Columns of the biomarker summary: (structure, measure, header, digits).
BIOMARKER_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("body", "volume_mm3", "body volume (mm³)", 0),
    ("body", "height_anterior_mm", "body height ant. (mm)", 1),
    ("body", "height_middle_mm", "body height mid. (mm)", 1),
    ("body", "height_posterior_mm", "body height post. (mm)", 1),
    ("disc", "volume_mm3", "disc volume (mm³)", 0),
    ("disc", "height_mm", "disc height (mm)", 1),
    ("canal", "area_mm2", "canal area (mm²)", 1),
    ("cord", "area_mm2", "cord area (mm²)", 1),
)
#: Where each cohort plot goes, relative to the page.
FIGURES = {
    "status": "figures/status.png",
    "metrics": "figures/metrics.png",
    "biomarkers": "figures/biomarkers.png",
}


@dataclass(frozen=True)
class TextTable:
    """A table already formatted as text: one header, rows of cells."""

    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One heading of the report with its notes, tables, figures and gallery images."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[TextTable] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # relative PNG paths
    gallery: list[tuple[str, str]] = field(default_factory=list)  # (relative PNG path, caption)


@dataclass
class Report:
    """What a report says, and the PNG files (relative path -> bytes) its pages link to."""

    title: str
    generated: str
    sections: list[Section]
    files: dict[str, bytes]


def build_report(cohort: Cohort, *, gallery_max: int | None = 100) -> Report:
    """Everything the report shows, from the manifest and the per-subject tables.

    ``gallery_max`` caps the snapshots shown (None: all). Missing tables (no finished subject,
    no reference masks) become a sentence saying so, never an error.
    """
    manifest = cohort.manifest
    files: dict[str, bytes] = {}
    states = plots.subject_states(manifest)
    files[FIGURES["status"]] = plots.figure_png(plots.plot_status(manifest))
    sections = [
        _status_section(states, manifest),
        _failed_section(states),
        _metrics_section(cohort.table("metrics", participants=False), files),
        _biomarker_section(cohort.table("biomarkers", participants=False), files),
        _gallery_section(cohort, states, files, gallery_max),
    ]
    return Report(
        title=f"Cohort report: {redact_url(cohort.store.url)}",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=sections,
        files=files,
    )


def _status_section(states: pd.DataFrame, manifest: pd.DataFrame) -> Section:
    sec = Section("Status", figures=[FIGURES["status"]])
    if states.empty:
        sec.notes.append("The manifest has no subjects yet: ingest a cohort first.")
        return sec
    counts = [(s, int((states["state"] == s).sum())) for s in plots.STATES]
    sec.notes.append(
        f"{plots.count_scans(states['subject'])}: " + ", ".join(f"{n} {s}" for s, n in counts) + "."
    )
    sec.tables.append(TextTable(["state", "scans"], [[s, str(n)] for s, n in counts]))
    seconds = plots.phase_seconds(manifest)
    if seconds:
        rows = [
            [p, str(v.size), f"{np.median(v):.1f}", f"{v.mean():.1f}", f"{v.sum():.1f}"]
            for p, v in seconds.items()
        ]
        sec.tables.append(TextTable(["phase", "scans", "median s", "mean s", "total s"], rows))
    return sec


def _failed_section(states: pd.DataFrame) -> Section:
    sec = Section("Failed scans")
    failed = states[states["state"] == "failed"] if len(states) else states
    if failed.empty:
        sec.notes.append("No scan failed.")
        return sec
    sec.notes.append(
        f"{len(failed)} of {len(states)} scans failed; the others were still processed."
    )
    rows = [
        [r.subject, str(r.phase), str(r.step or ""), str(r.error or "")]
        for r in failed.itertuples(index=False)
    ]
    sec.tables.append(TextTable(["scan", "phase", "step", "reason"], rows))
    return sec


def _metrics_section(metrics: pd.DataFrame, files: dict[str, bytes]) -> Section:
    sec = Section("Metrics per structure")
    if metrics.empty:
        sec.notes.append(
            "No metric tables: no finished subject had reference masks in the store "
            "(ingest them with `spineps-dask run STORE -i BIDS --references DIR`)."
        )
        return sec
    # Context columns that are the same for every row (one run's config) say nothing here.
    constant = [
        c
        for c in metrics.columns
        if c not in (*ID_COLUMNS, *KEY_COLUMNS, "value") and metrics[c].nunique(dropna=False) <= 1
    ]
    summary = summarize(metrics.drop(columns=constant))
    header, rows = summary_cells(summary)
    sec.notes.append(
        f"Mean ± SD over {plots.count_scans(metrics['scan'])} (global: whole structures of the "
        "semantic mask; instance: panoptic quality of the instance mask)."
    )
    sec.tables.append(TextTable(header, rows))
    files[FIGURES["metrics"]] = plots.figure_png(plots.plot_metric_boxes(metrics))
    sec.figures.append(FIGURES["metrics"])
    return sec


def biomarker_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD and count over scans per level, structure and measure, levels in
    anatomical order (finite values only)."""
    cols = ["level", "structure", "measure", "mean", "sd", "n"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    finite = table[np.isfinite(table["value"].to_numpy(dtype=float))]
    out = (
        finite.groupby(["level", "structure", "measure"])["value"]
        .agg(mean="mean", sd="std", n="count")
        .reset_index()
    )
    rank = {lv: i for i, lv in enumerate(plots.level_order(out["level"]))}
    out = out.assign(_r=out["level"].map(rank)).sort_values(["_r", "structure", "measure"])
    return out.drop(columns="_r").reset_index(drop=True)[cols]


def _biomarker_section(table: pd.DataFrame, files: dict[str, bytes]) -> Section:
    sec = Section("Biomarkers per level")
    if table.empty:
        sec.notes.append("No biomarker tables: no subject has finished yet.")
        return sec
    summary = biomarker_summary(table).set_index(["level", "structure", "measure"])
    used = [c for c in BIOMARKER_COLUMNS if (c[0], c[1]) in {k[1:] for k in summary.index}]
    rows = []
    for level in plots.level_order(summary.index.get_level_values("level")):
        cells = [level_title(level), str(table.loc[table["level"] == level, "scan"].nunique())]
        for structure, measure, _, digits in used:
            key = (level, structure, measure)
            if key in summary.index:
                r = summary.loc[key]
                one = r["n"] < 2  # no SD from one subject: the value alone
                cells.append(
                    f"{r['mean']:.{digits}f}"
                    if one
                    else format_mean_sd(r["mean"], r["sd"], digits=digits)
                )
            else:
                cells.append("")
        rows.append(cells)
    sec.notes.append(
        f"Mean ± SD over {plots.count_scans(table['scan'])}; a disc is named by the vertebrae "
        "above and below it (`C2-C3`; `IVD C2` in the tables). Structures cut by the field of "
        "view are not measured."
    )
    sec.tables.append(TextTable(["level", "scans", *(c[2] for c in used)], rows))
    files[FIGURES["biomarkers"]] = plots.figure_png(plots.plot_level_biomarkers(table))
    sec.figures.append(FIGURES["biomarkers"])
    return sec


def _gallery_section(
    cohort: Cohort, states: pd.DataFrame, files: dict[str, bytes], gallery_max: int | None
) -> Section:
    sec = Section("Snapshots")
    done = list(states.loc[states["state"] == "done", "subject"]) if len(states) else []
    shown = done if gallery_max is None else done[:gallery_max]
    for subject in shown:
        try:
            png = cohort.snapshot(subject)
        except StoreError:  # a run with snapshots off: nothing to show for it
            continue
        path = f"snapshots/{subject}.png"
        files[path] = png
        sec.gallery.append((path, subject))
    if not done:
        sec.notes.append("No finished scan yet, so no snapshots.")
    elif gallery_max == 0:
        sec.notes.append("Gallery turned off.")
    elif not sec.gallery:
        sec.notes.append("The finished scans have no snapshots (run with snapshots on).")
    else:
        sec.notes.append(f"{len(sec.gallery)} of {len(done)} finished scans.")
    return sec


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub flavour), images by relative link."""
    out = [f"# {report.title}", "", f"_Generated {report.generated}._", ""]
    for sec in report.sections:
        out += [f"## {sec.title}", ""]
        out += [line for note in sec.notes for line in (note, "")]
        for t in sec.tables:
            out.append("| " + " | ".join(_md_cell(h) for h in t.header) + " |")
            out.append("|" + "---|" * len(t.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            out.append("")
        out += [line for fig in sec.figures for line in (f"![{sec.title}]({fig})", "")]
        out += [line for p, cap in sec.gallery for line in (f"**{cap}**", "", f"![{cap}]({p})", "")]
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
code { background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img.figure { max-width: 100%; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { margin: 0; width: 360px; }
.gallery img { width: 100%; }
"""


_CODE = re.compile(r"`([^`]+)`")


def _html_text(text: str) -> str:
    """Escaped text with Markdown's inline code (`` `x` ``) as ``<code>x</code>``: notes are
    written once, for both formats."""
    return _CODE.sub(r"<code>\1</code>", html.escape(text))


def _html_table(t: TextTable) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    """The report as one HTML page, images by relative link (``figures/``, ``snapshots/``)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1><p><em>Generated {esc(report.generated)}.</em></p>",
    ]
    for sec in report.sections:
        parts.append(f"<h2>{esc(sec.title)}</h2>")
        parts += [f"<p>{_html_text(note)}</p>" for note in sec.notes]
        parts += [_html_table(t) for t in sec.tables]
        parts += [
            f'<p><img class="figure" src="{esc(f)}" alt="{esc(sec.title)}"></p>'
            for f in sec.figures
        ]
        if sec.gallery:
            parts.append('<div class="gallery">')
            parts += [
                f'<figure><a href="{esc(p)}"><img src="{esc(p)}" alt="{esc(cap)}"></a>'
                f"<figcaption>{esc(cap)}</figcaption></figure>"
                for p, cap in sec.gallery
            ]
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    store_url: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    fmt: Format = "html",
    gallery_max: int | None = 100,
    storage_options: dict | None = None,
) -> Path:
    """Write ``report.html`` or ``report.md`` and its PNGs into ``out_dir``; returns the page.

    Every file is written under a temporary name and renamed; the page goes last, so it never
    links to a picture that is not there yet.

    Raises
    ------
    StoreError
        ``store_url`` is not a cohort store.
    ValueError
        ``fmt`` is neither ``'html'`` nor ``'md'``.
    """
    if fmt not in ("html", "md"):
        raise ValueError(f"report format {fmt!r} is not supported; use 'html' or 'md'")
    try:
        cohort = open_cohort(store_url, storage_options=storage_options)
    except StoreError as exc:
        raise StoreError(
            f"{redact_url(os.fspath(store_url))} is not a cohort store; give the store "
            "`spineps-dask ingest BIDS STORE` made (a folder with zarr.json and "
            "manifest.parquet)"
        ) from exc
    report = build_report(cohort, gallery_max=gallery_max)
    out = Path(out_dir)
    for rel, data in report.files.items():
        write_file(data, out / rel)
    text = render_html(report) if fmt == "html" else render_markdown(report)
    page = write_file(text, out / f"report.{fmt}")
    logger.info("report: %s (%d pictures)", page, len(report.files))
    return page
