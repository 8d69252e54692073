"""``spineps-dask sweep CONFIG.yaml``: a grid of settings over a cohort, with reused work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from spineps_dask.cli._progress import Counter, console, make_progress, print_error

if TYPE_CHECKING:  # imported by the command itself, so that --help stays instant
    from rich.progress import Progress

    from spineps_dask.sweep import SweepEvents, SweepResult
else:
    SweepEvents = object  # the no-op base only matters to the type checker

#: What the printed table shows per setting (the files hold everything).
_SHOWN = (("global", "DSC"), ("instance", "RQ"), ("instance", "SQ"), ("instance", "PQ"))


def sweep(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Sweep YAML."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (overrides YAML)."),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        "-c",
        help="local | cuda | slurm | gateway | kubernetes (configs shipped in the package, "
        "or your own in $SPINEPS_DASK_CLUSTER_DIR) | a YAML file | tcp://address",
    ),
    workers: int | None = typer.Option(None, help="Workers for --cluster local."),
    threads: int | None = typer.Option(None, help="Threads per worker (torch, N4)."),
    max_in_flight: int | None = typer.Option(None, help="Subjects in the cluster at once."),
    labeling_model: str | None = typer.Option(
        None,
        "--labeling-model",
        help="Labelling model folder, or 'none' (overrides models.labeling in the YAML); "
        "a grid over 'naming: [rule, model]' compares it with the rule on the same masks.",
    ),
) -> None:
    """Run every grid point of CONFIG over its cohort and compare them.

    Each stage runs once per subject for all settings that do not change it (the semantic
    model once for a grid of merge / post-processing settings). Writes metrics.parquet (one row
    per subject x setting x structure x metric), summary.csv/.md (mean ± SD), comparisons.csv/.md
    (Wilcoxon signed-rank vs the baseline), metrics.png, stages.parquet and failures.csv. A rerun
    computes only the missing subject x setting pairs. Exit code 1 when some pair failed.
    """
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.sweep import SweepConfig, run_sweep

    try:
        cfg = SweepConfig.from_file(
            config,
            out=out,
            cluster=cluster,
            workers=workers,
            threads=threads,
            max_in_flight=max_in_flight,
        )
        if labeling_model is not None:
            value = "none" if labeling_model.lower() == "none" else str(Path(labeling_model))
            cfg = replace(cfg, models={**cfg.models, "labeling": value})
        with make_progress() as progress:
            result = run_sweep(cfg, events=_BarEvents(progress))
    except SpinepsDaskError as exc:
        print_error("sweep stopped", exc)
        raise typer.Exit(code=2) from exc
    _print_result(result)
    console.print(f"outputs in {cfg.out}")
    if len(result.failures):
        raise typer.Exit(code=1)


class _BarEvents(SweepEvents):
    """Sweep events -> a bar of subject x setting results; model runs counted beside it."""

    def __init__(self, progress: Progress) -> None:
        self.parts = Counter(progress, "subject x setting", 0)
        self.failed = 0
        self.semantic = 0

    def parts_total(self, n: int) -> None:
        self.parts.add_total(n)

    def stage_ran(self, stage: str) -> None:
        self.semantic += stage == "semantic"

    def part_finished(self, subject: str, setting: str, failed: bool) -> None:
        self.failed += failed
        note = f"semantic runs {self.semantic}"
        self.parts.advance(1, note=note + (f", [red]{self.failed} failed" if self.failed else ""))


def _print_result(result: SweepResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from spineps_dask.metrics.structures import TITLES
    from spineps_dask.metrics.tables import format_mean_sd, metric_label

    summary = result.summary().set_index(["setting", "structure", "level", "metric"])
    view = Table(title=f"mean ± SD over subjects (baseline: {result.baseline})")
    view.add_column("Structure")
    view.add_column("Metric")
    for label in result.order:
        view.add_column(label)
    keys = summary.reset_index()[["structure", "level", "metric"]].drop_duplicates()
    for r in keys.itertuples(index=False):
        if (r.level, r.metric) not in _SHOWN:
            continue
        cells = []
        for label in result.order:
            k = (label, r.structure, r.level, r.metric)
            cells.append(
                format_mean_sd(summary.loc[k, "mean"], summary.loc[k, "sd"])
                if k in summary.index
                else "—"
            )
        name = TITLES.get(r.structure, r.structure) + (" (inst.)" if r.level == "instance" else "")
        view.add_row(name, metric_label(r.metric), *cells)
    Console().print(view)
    comp = result.comparisons()
    sig = comp[comp["p_value"] < 0.05]
    console.print(
        f"Wilcoxon vs baseline: {len(sig)} of {len(comp)} comparisons with p < 0.05 "
        "(comparisons.md lists all)"
    )
    stages = result.stages
    if len(stages):
        counts = stages.groupby("stage").size().to_dict()
        console.print(
            "stage runs: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " for "
            f"{result.metrics['subject'].nunique()} subjects x {len(result.order)} settings"
        )
    for f in result.failures.itertuples(index=False):
        console.print(f"[red]failed[/red] {f.subject} ({f.setting}) in {f.step}: {f.error}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
