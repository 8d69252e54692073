"""``spineps-dask segment``: one scan, in this process, same outputs as ``spineps sample``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # --help stays instant: the pipeline is imported by the command itself
    from spineps_dask.pipeline.protocols import (
        InstanceSegmenter,
        SemanticSegmenter,
        VertebraClassifier,
    )
    from spineps_dask.pipeline.segment import Segmentation

import typer

from spineps_dask.cli import _options
from spineps_dask.cli._progress import console, print_error


def segment(
    scan: Path = typer.Argument(..., exists=True, dir_okay=False, help="Sagittal T2w NIfTI."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: <scan folder>/derivatives_seg)."
    ),
    semantic: Path | None = typer.Option(
        None,
        "--semantic",
        exists=True,
        dir_okay=False,
        help="Start from this semantic mask (e.g. a corrected one): instance phase only.",
    ),
    semantic_model: _options.SemanticModel = None,
    instance_model: _options.InstanceModel = None,
    labeling_model: _options.LabelingModel = None,
    naming: _options.Naming = None,
    n4: bool = typer.Option(True, "--n4/--no-n4", help="N4 bias-field correction."),
    recipe: str = typer.Option(
        "reference",
        help="reference: feed the semantic network as spineps 2.1.3 does (for published weights); "
        "native: let nnU-Net resample the scan (models trained that way).",
    ),
    reference_mode: bool = typer.Option(
        False,
        "--reference-mode/--project-rules",
        help="Switch off this project's rules beyond spineps 2.1.3 (its cleaning, instance "
        "phase and post-processing as the reference runs them), for fidelity checks.",
    ),
    postprocess: bool = typer.Option(
        True, "--postprocess/--no-postprocess", help="The paper's post-processing."
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    threads: int | None = typer.Option(None, help="Torch threads (default: torch's choice)."),
    snapshot: bool = typer.Option(True, "--snapshot/--no-snapshot", help="Write the PNG."),
) -> None:
    """Segment one scan: semantic mask, instance mask, centroids and snapshot.

    Outputs get BIDS derivative names after the scan, e.g. sub-01_mod-T2w_seg-vert_msk.nii.gz.
    """
    from spineps_dask.config import RunConfig
    from spineps_dask.distributed.model_cache import instance_model as load_instance
    from spineps_dask.distributed.model_cache import labeling_model as load_labeling
    from spineps_dask.distributed.model_cache import semantic_model as load_semantic
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io.bids import parse_scan_name

    overrides = {
        "semantic_model": semantic_model,
        "instance_model": instance_model,
        "labeling_model": labeling_model,
        "naming": naming,
        "reference_mode": reference_mode,
    }
    try:
        cfg = RunConfig.from_request({k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--naming") from exc
    out = out or scan.parent / "derivatives_seg"
    try:
        name = parse_scan_name(scan)
        with console.status("loading models") as status:
            sem_model = (
                None
                if semantic
                else load_semantic(cfg.semantic_model, device=device, threads=threads)
            )
            inst_model = load_instance(cfg.instance_model, device=device)
            folder = cfg.labeling_folder
            lab_model = load_labeling(folder, device=device) if folder is not None else None
            result, paths = segment_file(
                scan,
                out,
                sem_model,
                inst_model,
                n4=n4,
                recipe=recipe,
                reference_mode=reference_mode,
                postprocess=postprocess,
                semantic=semantic,
                snapshot=snapshot,
                on_stage=lambda s: status.update(f"{name.key}: {s}"),
                labeling_model=lab_model,
                naming=cfg.naming,
            )
    except SpinepsDaskError as exc:
        print_error(f"cannot segment {scan.name}", exc)
        raise typer.Exit(code=2) from exc
    verts = sorted(k for k in result.centroids if k < 100)
    from spineps_dask.labels import instance_name

    console.print(
        f"{name.key}: {len(verts)} vertebrae "
        f"({', '.join(instance_name(v) for v in verts)}), {_naming_line(result)}, "
        f"{result.n_cutouts} cutouts, {sum(result.timings.values()):.1f} s"
    )
    for kind, path in paths.items():
        console.print(f"  {kind:9s} {path}")


def _naming_line(result: Segmentation) -> str:
    """``named by model+anchors (confidence 0.97)`` / ``named by rule (anchor C2)``; a low
    confidence or a missing anchor is said in so many words."""
    n = result.naming
    if n is None or n.method == "rule":
        flag = " - no anchor: named from the top as C2" if result.anchor == "none" else ""
        return f"named by rule (anchor {result.anchor}){flag}"
    flag = " - LOW CONFIDENCE, check the names" if n.low_confidence else ""
    return f"named by {n.method} (confidence {n.confidence:.2f}){flag}"


def segment_file(
    scan: Path,
    out: Path,
    semantic_model: SemanticSegmenter | None,
    instance_model: InstanceSegmenter,
    *,
    n4: bool = True,
    recipe: str = "reference",
    reference_mode: bool = False,
    postprocess: bool = True,
    semantic: Path | None = None,
    snapshot: bool = True,
    on_stage: Callable[[str], None] | None = None,
    labeling_model: VertebraClassifier | None = None,
    naming: str = "model+anchors",
) -> tuple[Segmentation, dict[str, Path]]:
    """One NIfTI scan in, the reference's four outputs out (what `spineps sample` does).

    ``labeling_model``: names the vertebrae (None: the counting rule); ``naming``: how.
    """
    from spineps_dask.io.bids import parse_scan_name
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.io.outputs import write_subject_outputs
    from spineps_dask.pipeline.naming import NamingSettings
    from spineps_dask.pipeline.segment import segment as run_segment
    from spineps_dask.viz.snapshot import render_snapshot

    name = parse_scan_name(scan)
    image = load_volume(scan)
    result = run_segment(
        image,
        semantic_model,
        instance_model,
        n4=n4,
        recipe=recipe,
        reference_mode=reference_mode,
        postprocess_on=postprocess,
        subject=name.key,
        semantic=load_volume(semantic) if semantic else None,
        on_stage=on_stage,
        labeling_model=labeling_model,
        naming=NamingSettings(method=naming),
    )
    png = (
        render_snapshot(image, result.semantic, result.instance, title=name.key)
        if snapshot
        else None
    )
    paths = write_subject_outputs(
        out,
        name,
        semantic=result.semantic,
        instance=result.instance,
        centroids=result.centroids,
        snapshot_png=png,
        naming=result.naming.record() if result.naming is not None else None,
    )
    return result, paths


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
