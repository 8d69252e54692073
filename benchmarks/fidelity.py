"""Fidelity: `spineps` 2.1.3 and this project on the same scans and model folders, stage by stage.

Issue 22. The reference runs in its own virtual environment (`fidelity_reference.py` captures
its stages); this project runs the same scans in this process with the same captures. Printed
per scan and in total: the semantic network input (shape, max |difference|, number of windows),
the raw semantic argmax at model resolution (share of equal voxels), the cleaned
model-resolution mask, the instance grid, the cutouts (count, centres, equal voxels), and the
final semantic and instance masks (Dice per label, vertebra count and names), plus each
package's Dice against the ground truth.

The reference's virtual environment (~3 min, ~2 GB, CPU torch):

    python -m venv /work/refvenv && /work/refvenv/bin/pip install torch==2.13.0
    echo torch==2.13.0 > /tmp/c.txt && /work/refvenv/bin/pip install -c /tmp/c.txt spineps==2.1.3
    /work/refvenv/bin/pip uninstall -y torchvision

    PYTHONPATH=. python benchmarks/fidelity.py --subjects 5 --seed 7 [--no-reference-mode]
        [--spineps-python /work/refvenv/bin/python] [--work DIR] [--no-real] [--reuse]

By default this project runs in its reference mode (`segment(..., reference_mode=True)`: its
rules beyond spineps switched off); ``--no-reference-mode`` shows how far its own rules take
the masks from the reference's, and which is closer to the ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PYTHON_CANDIDATES = ("/work/refvenv/bin/python", "/work/venvs/spineps/bin/python")
#: spineps 2.1.3 splits the endplate (62) into superior / inferior (52 / 53); ours keeps 62.
SPLIT_ENDPLATES = {52: 62, 53: 62}
SEMANTIC_LABELS = {
    "body": (49, 50),
    "posterior": (41, 42, 43, 44, 45, 46, 47, 48),
    "ivd": (100,),
    "endplate": (62,),
    "canal": (61,),
    "cord": (60,),
    "sacrum": (26,),
}


def spineps_python(given: str | None) -> Path | None:
    for cand in [given, os.environ.get("SPINEPS_PYTHON"), *PYTHON_CANDIDATES]:
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def write_scans(work: Path, subjects: int, seed: int, real: bool) -> list[tuple[Path, Path]]:
    """Phantom scans (mixed regions, orientations, spacings) and the tptbox real T2w crop, each
    with its ground-truth semantic and instance masks: [(scan, truth folder)]."""
    from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort

    bids = work / "bids"
    shutil.rmtree(bids, ignore_errors=True)
    scans = write_bids_cohort(bids, subjects=subjects, seed=seed)
    out = [(s, bids / GROUNDTRUTH / s.name.split("_")[0] / "anat") for s in scans]
    if real:
        import TPTBox

        sample = Path(TPTBox.__file__).parent / "tests" / "sample_mri"
        folder = bids / "sub-tptbox" / "anat"
        truth = bids / GROUNDTRUTH / "sub-tptbox" / "anat"
        folder.mkdir(parents=True)
        truth.mkdir(parents=True)
        shutil.copy(sample / "sub-mri_label-6_T2w.nii.gz", folder / "sub-tptbox_T2w.nii.gz")
        for kind, src in (("spine", "subreg"), ("vert", "vert")):
            shutil.copy(
                sample / f"sub-mri_seg-{src}_label-6_msk.nii.gz",
                truth / f"sub-tptbox_mod-T2w_seg-{kind}_msk.nii.gz",
            )
        out.append((folder / "sub-tptbox_T2w.nii.gz", truth))
    return out


def _capture(work: Path, scan: Path) -> Path:
    return work / "spineps" / f"{scan.name.split('.')[0]}.npz"


def run_reference(python: Path, out: Path, sem: Path, inst: Path, scans: list[Path]) -> float:
    """All scans through `spineps` in one process (models loaded once); returns wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), str(HERE / "fidelity_reference.py"), str(out), str(sem), str(inst)]
    env = {**os.environ, "SPINEPS_NO_CITATION_REMINDER": "1", "PYTHONPATH": ""}
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd + [str(s) for s in scans], env=env, capture_output=True, text=True, check=False
    )
    (out / "spineps.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"spineps failed (rc {proc.returncode}); log in {out / 'spineps.log'}")
    return time.perf_counter() - t0


class Capture:
    """This project's stages, captured by wrapping the functions `pipeline.segment` calls."""

    def __init__(self, semantic_model: Any) -> None:
        import spineps_dask.pipeline.segment as seg

        self.store: dict[str, Any] = {}
        self._seg = seg
        self._orig = {
            n: getattr(seg, n) for n in ("semantic_phase", "instance_input", "cutouts_at")
        }
        store = self.store
        model = semantic_model
        orig_logits, orig_grid = model.network_logits, model.predict_model_grid

        def network_logits(x: np.ndarray, **k: Any) -> Any:
            store.setdefault("net_input", np.asarray(x))
            return orig_logits(x, **k)

        def predict_model_grid(image: Any) -> Any:
            out = orig_grid(image)
            store["raw"] = out
            return out

        model.network_logits, model.predict_model_grid = network_logits, predict_model_grid
        from spineps_dask.pipeline.reference import instance_phase

        orig_merge = instance_phase.merge

        def merge(*a: Any, **k: Any) -> Any:
            out = orig_merge(*a, **k)
            store["merged"] = out
            return out

        instance_phase.merge = merge
        model.predictor.network.register_forward_pre_hook(self._count)
        for name, fn in self._orig.items():
            setattr(seg, name, self._wrap(name, fn))

    def _count(self, _module: Any, args: tuple) -> None:
        self.store["n_windows"] = self.store.get("n_windows", 0) + int(args[0].shape[0])

    def _wrap(self, name: str, fn: Any) -> Any:
        def wrapped(*a: Any, **k: Any) -> Any:
            out = fn(*a, **k)
            self.store.setdefault(name, out)
            return out

        return wrapped


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b)) if a.shape == b.shape else float("nan")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return float("nan") if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def semantic_dice(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {k: dice(np.isin(a, v), np.isin(b, v)) for k, v in SEMANTIC_LABELS.items()}


def vertebra_dice(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Dice per vertebra label present in either mask, and their names."""
    from spineps_dask.labels import instance_name

    labels = sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    return {instance_name(int(v)): dice(a == v, b == v) for v in labels if v < 100}


def compare(ref: dict[str, Any], ours: dict[str, Any], lut: np.ndarray) -> dict[str, Any]:
    """Stage-by-stage agreement of one scan (stages the reference did not reach are left out)."""
    from spineps_dask.geometry import Volume

    row: dict[str, Any] = {"spineps": ref["meta"].get("error", "")}
    if "net_input" in ref and "net_input" in ours:
        a, b = ours["net_input"].astype(np.float32), ref["net_input"].astype(np.float32)
        row["input_shape_same"] = a.shape == b.shape
        row["input_max_abs_diff"] = float(np.abs(a - b).max()) if a.shape == b.shape else None
        row["windows"] = f"{ours['n_windows']}/{ref['meta']['n_windows']}"
    if "raw" in ref and "raw" in ours:
        raw_ref = lut[np.clip(ref["raw"], 0, len(lut) - 1)]
        row["raw_argmax_equal"] = agreement(np.asarray(ours["raw"].data), raw_ref)
    if "clean" in ref and "semantic_phase" in ours:
        clean_ref = Volume(ref["clean"], ref["clean_affine"]).reorient(("P", "I", "R"))
        row["clean_equal"] = agreement(np.asarray(ours["semantic_phase"].data), clean_ref.data)
    offset = np.zeros(3, int)
    if "inst_grid" in ref and "instance_input" in ours:
        grid, crop = ours["instance_input"], ref["inst_grid"]
        to_ours = np.linalg.inv(grid.affine) @ ref["inst_grid_affine"]
        offset = np.rint(to_ours[:3, 3]).astype(int)
        window = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        row["instance_grid_equal"] = agreement(np.asarray(grid.data)[window], crop)
        row["instance_grid_spacing"] = [round(float(v), 4) for v in grid.spacing]
    if "cutouts" in ref and "cutouts_at" in ours:
        cut, ref_cuts = ours["cutouts_at"], ref["cutouts"]
        row["cutouts"] = f"{len(cut)}/{len(ref_cuts)}"
        if len(cut) == len(ref_cuts) and len(cut):
            centres = np.array([c.centre for c in cut]) - offset
            ref_centres = np.trunc(ref["cutout_centres"])  # spineps truncates inside its crop
            row["cutout_centres_equal"] = bool(np.array_equal(centres, ref_centres))
            equal = [agreement(c.array, r) for c, r in zip(cut, ref_cuts, strict=True)]
            row["cutouts_equal"] = float(np.mean(equal))
    if "vert_grid" in ref and "merged" in ours:
        row["merged_equal"] = agreement(ours["merged"], ref["vert_grid"])
    if "vert_grid" in ref and "merged" in ours:
        row["merged_equal"] = agreement(ours["merged"], ref["vert_grid"])
    if "semantic" in ref and ours["result"] is not None:
        sem_ref = _merged_endplates(ref["semantic"])
        sem_ours = _merged_endplates(np.asarray(ours["result"].semantic.data))
        inst_ours = np.asarray(ours["result"].instance.data).astype(np.int32)
        inst_ref = ref["instance"].astype(np.int32)
        row["final_semantic_dice"] = semantic_dice(sem_ours, sem_ref)
        row["final_vertebra_dice"] = vertebra_dice(inst_ours, inst_ref)
        row["vertebrae_ours_ref"] = [
            sorted(int(v) for v in np.unique(x) if 0 < v < 100) for x in (inst_ours, inst_ref)
        ]
    return row


def _merged_endplates(semantic: np.ndarray) -> np.ndarray:
    out = semantic.astype(np.int32)
    for src, dst in SPLIT_ENDPLATES.items():
        out[out == src] = dst
    return out


def summary_table(rows: list[dict[str, Any]]) -> str:
    """One Markdown row per scan: each stage's agreement, then the final masks' lowest Dice."""

    def cell(v: Any, fmt: str = "{:.4f}") -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "–"
        return fmt.format(v) if isinstance(v, float) else str(v)

    head = (
        "| scan | outcome (ours / spineps) | input max abs diff | windows | raw argmax equal | "
        "cleaned equal | instance grid equal | cutouts (centres equal) | merged equal | "
        "final semantic Dice min | final vertebra Dice min | names equal |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        sem = [v for v in r.get("final_semantic_dice", {}).values() if not np.isnan(v)]
        vert = list(r.get("final_vertebra_dice", {}).values())
        names = r.get("vertebrae_ours_ref")
        cuts = r.get("cutouts", "–")
        if "cutout_centres_equal" in r:
            cuts = f"{cuts} ({'yes' if r['cutout_centres_equal'] else 'no'})"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["scan"],
                    f"{r.get('ours', '')[:40]} / {r.get('spineps', '')}",
                    cell(r.get("input_max_abs_diff"), "{:.1e}"),
                    cell(r.get("windows")),
                    cell(r.get("raw_argmax_equal")),
                    cell(r.get("clean_equal")),
                    cell(r.get("instance_grid_equal")),
                    cell(cuts),
                    cell(r.get("merged_equal")),
                    cell(min(sem) if sem else None),
                    cell(min(vert) if vert else None),
                    cell(None if names is None else names[0] == names[1]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def write_fixture(path: Path, ref: dict[str, Any], lut: np.ndarray, instance_config: Any) -> None:
    """The reference's semantic cleaning and instance phase on one scan, small enough for the
    repository: raw and cleaned model-grid masks (P-I-R), the cropped instance grid, its cutout
    centres, the model's answer per cutout and the merged vertebrae on the same crop."""
    from spineps_dask.geometry import Volume, reference_zoom

    pir = ("P", "I", "R")
    raw = Volume(lut[np.clip(ref["raw"], 0, len(lut) - 1)], ref["raw_affine"]).reorient(pir)
    clean = Volume(ref["clean"].astype(np.uint8), ref["clean_affine"]).reorient(pir)
    grid = ref["inst_grid"]
    offset = np.rint((np.linalg.inv(ref["vert_grid_affine"]) @ ref["inst_grid_affine"])[:3, 3])
    window = tuple(slice(int(o), int(o) + n) for o, n in zip(offset, grid.shape, strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        raw=raw.data.astype(np.uint8),
        clean=clean.data,
        semantic_zoom=reference_zoom(raw.affine),
        inst_grid=grid.astype(np.uint8),
        inst_zoom=reference_zoom(ref["inst_grid_affine"]),
        cutout_centres=np.trunc(ref["cutout_centres"]).astype(int),
        inst_pred=ref["inst_pred"].astype(np.uint8),
        merged=ref["vert_grid"][window].astype(np.uint16),
        cutout_size=np.asarray(instance_config.cutout_size),
        resolution=np.asarray(instance_config.resolution_range, dtype=float),
        sizes=np.asarray(
            [instance_config.corpus_size_cleaning, instance_config.vert_size_threshold]
        ),
    )


def truth_scores(sem: np.ndarray, inst: np.ndarray, truth: Path, scan: Path) -> dict[str, float]:
    """Global Dice per structure and mean vertebra Dice against the ground truth."""
    from spineps_dask.io.nifti import load_volume

    sub = scan.name.split("_")[0]
    gt_sem = np.asarray(load_volume(truth / f"{sub}_mod-T2w_seg-spine_msk.nii.gz").data)
    gt_inst = np.asarray(load_volume(truth / f"{sub}_mod-T2w_seg-vert_msk.nii.gz").data)
    out = {k: v for k, v in semantic_dice(sem, gt_sem).items() if not np.isnan(v)}
    verts = [v for v in np.unique(gt_inst) if 0 < v < 100]
    out["vertebra_instance"] = float(np.mean([dice(inst == v, gt_inst == v) for v in verts]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--semantic-model", type=Path, default=None)
    parser.add_argument("--instance-model", type=Path, default=None)
    parser.add_argument("--spineps-python", default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    parser.add_argument(
        "--reuse", action="store_true", help="keep spineps captures already in --work"
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=None,
        help="write small test fixtures of the reference's cleaning and instance phase here",
    )
    parser.add_argument(
        "--reference-mode",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="this project's rules beyond spineps switched off (default); --no-reference-mode "
        "shows what they change",
    )
    args = parser.parse_args()
    python = spineps_python(args.spineps_python)
    if python is None:
        raise SystemExit("no spineps virtual environment found: see this file's docstring")

    import torch

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.models.instance import InstanceModel
    from spineps_dask.models.semantic import SemanticModel
    from spineps_dask.pipeline.segment import segment

    torch.set_num_threads(1)
    sem_dir = args.semantic_model or DEMO_MODELS / "semantic"
    inst_dir = args.instance_model or DEMO_MODELS / "instance"
    work = args.work or Path(tempfile.mkdtemp(prefix="spineps-fidelity-"))
    scans = write_scans(work, args.subjects, args.seed, args.real)
    todo = [s for s, _ in scans if not (args.reuse and _capture(work, s).exists())]
    ref_seconds = run_reference(python, work / "spineps", sem_dir, inst_dir, todo) if todo else 0.0

    sem_model = SemanticModel.from_folder(sem_dir, device="cpu", threads=1)
    inst_model = InstanceModel.from_folder(inst_dir, device="cpu")
    capture = Capture(sem_model)
    lut = sem_model._lut
    rows = []
    ours_seconds = 0.0
    for scan, truth in scans:
        name = scan.name.split(".")[0]
        with np.load(_capture(work, scan)) as z:
            ref = {k: z[k] for k in z.files}
        ref["meta"] = json.loads(str(ref["meta"]))
        capture.store.clear()
        t0 = time.perf_counter()
        try:
            result = segment(
                load_volume(scan),
                sem_model,
                inst_model,
                n4=False,
                subject=name,
                reference_mode=args.reference_mode,
            )
        except SpinepsDaskError as exc:  # the reference may fail on the same scan
            result = None
            capture.store["error"] = str(exc)
        ours_seconds += time.perf_counter() - t0
        ours = {**capture.store, "result": result}
        row = {"scan": name, "ours": ours.get("error", "ok"), **compare(ref, ours, lut)}
        if result is not None:
            sem_ours = _merged_endplates(np.asarray(result.semantic.data))
            row["truth_ours"] = truth_scores(
                sem_ours, np.asarray(result.instance.data), truth, scan
            )
        if "semantic" in ref:
            sem_ref = _merged_endplates(ref["semantic"])
            row["truth_ref"] = truth_scores(sem_ref, ref["instance"], truth, scan)
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
        if args.fixtures and "vert_grid" in ref and "raw" in ref:
            write_fixture(args.fixtures / f"{name}.npz", ref, lut, inst_model.config)
    print(summary_table(rows))
    print(
        f"spineps process {ref_seconds:.1f} s for {len(scans)} scans (with import and load); "
        f"ours {ours_seconds:.1f} s in-process"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
