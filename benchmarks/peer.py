"""Peer: the `spineps` package itself vs this project, same demo models, same phantoms.

The reference (`spineps` 2.1.3) lives in its own virtual environment; it runs the shipped demo
model folders as they are (`spineps sample -ms FOLDER -mi FOLDER -ml FOLDER --cpu`, the demo
labelling model included; ``--no-labeling``: ``-ml none`` and rule naming here), which is the
proof that they are SPINEPS model folders. Each subject gets a fresh folder (spineps reuses
existing outputs) and its own `spineps sample` process; ours runs `segment_file` (what
`spineps-dask segment` does) in this process with the models loaded once. Both outputs are
scored against the phantom ground truth with `spineps_dask.metrics`.

    python -m venv /work/venvs/spineps && /work/venvs/spineps/bin/pip install spineps==2.1.3
    python benchmarks/peer.py --subjects 4 [--spineps-python /work/venvs/spineps/bin/python]

N4 is off in both by default, as in `accuracy.py` and `throughput.py`.

Besides Dice, ``ID`` is the share of reference vertebrae carrying their true name.
The last line is the summary figure: spineps seconds per subject / ours.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Where `--spineps-python` is looked for when not given (first hit wins).
VENV_CANDIDATES = ("/work/venvs/spineps/bin/python", "~/.venvs/spineps/bin/python")
#: spineps 2.1.3 splits the endplate (62) into superior / inferior (52 / 53); ours keeps 62.
SPLIT_ENDPLATES = {52: 62, 53: 62}
SEMANTIC_STRUCTURES = ("vertebra", "ivd", "spinal_canal", "spinal_cord")
HOW_TO = (
    "create it with: python -m venv /work/venvs/spineps && "
    "/work/venvs/spineps/bin/pip install spineps==2.1.3 (~6.6 GB), "
    "or pass --spineps-python PATH"
)


def find_spineps(python: str | None) -> Path | None:
    """The `spineps` console script next to the venv's python, or None."""
    candidates = [python] if python else [os.environ.get("SPINEPS_PYTHON"), *VENV_CANDIDATES]
    for cand in candidates:
        if not cand:
            continue
        script = Path(cand).expanduser().parent / "spineps"
        if script.is_file():
            return script
    return None


def run_spineps(
    script: Path, scan: Path, work: Path, sem: Path, inst: Path, lab: Path | None, *, n4: bool
) -> dict:
    """One `spineps sample` process on a copy of ``scan`` in a fresh folder."""
    folder = work / scan.name.split("_")[0]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    local = Path(shutil.copy2(scan, folder / scan.name))
    cmd = [str(script), "sample", "-i", str(local), "-ms", str(sem), "-mi", str(inst)]
    cmd += ["-ml", str(lab) if lab else "none", "--cpu", "--n4" if n4 else "--no-n4"]
    env = {**os.environ, "SPINEPS_NO_CITATION_REMINDER": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (folder / "spineps.log").write_text(log, encoding="utf-8")
    took = re.findall(r"Pipeline took: ([\d.]+) seconds", log)
    return {
        "out": folder / "derivatives_seg",
        "wall": wall,
        "pipeline": float(took[-1]) if took else float("nan"),
        "rc": proc.returncode,
    }


def score(out_dir: Path, scan: Path, truth_dir: Path, subject: str) -> pd.DataFrame:
    """Metrics table of the masks in ``out_dir`` against the ground truth of ``scan``."""
    from spineps_dask.io.bids import parse_scan_name
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.io.outputs import output_paths
    from spineps_dask.metrics import evaluate_subject

    name = parse_scan_name(scan)
    pred, ref = output_paths(out_dir, name), output_paths(truth_dir, name)
    sem = np.asarray(load_volume(pred["semantic"]).data).astype(np.int32)
    for src, dst in SPLIT_ENDPLATES.items():
        sem[sem == src] = dst
    ref_sem = load_volume(ref["semantic"])
    return evaluate_subject(
        sem,
        np.asarray(load_volume(pred["instance"]).data).astype(np.int32),
        np.asarray(ref_sem.data).astype(np.int32),
        np.asarray(load_volume(ref["instance"]).data).astype(np.int32),
        spacing=ref_sem.spacing,
        subject=subject,
    )


def headline(df: pd.DataFrame) -> tuple[float, float, float]:
    """(mean global Dice of vertebra / IVD / canal / cord, vertebra instance Dice, ID: share
    of reference vertebrae named right)."""
    glob = df[(df.level == "global") & (df.metric == "DSC")]
    sem = glob[glob.structure.isin(SEMANTIC_STRUCTURES)]["value"].mean()
    vert = df[(df.level == "instance") & (df.structure == "vertebra")]
    inst, ident = vert[vert.metric == "DSC"], vert[vert.metric == "ID"]
    first = [float(x["value"].iloc[0]) if len(x) else float("nan") for x in (inst, ident)]
    return float(sem), first[0], first[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--region", default="lumbar")
    parser.add_argument(
        "--n4",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="N4 in both (the demo models trained without it; spineps' full-resolution N4 "
        "output then segments badly)",
    )
    parser.add_argument(
        "--labeling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="name vertebrae with the demo labelling model in both (spineps: -ml FOLDER)",
    )
    parser.add_argument("--spineps-python", default=None, help="python of the spineps venv")
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()

    script = find_spineps(args.spineps_python)
    if script is None:
        print(f"no spineps virtual environment found; {HOW_TO}", file=sys.stderr)
        sys.exit(2)

    from spineps_dask.cli.segment import segment_file
    from spineps_dask.distributed import model_cache
    from spineps_dask.errors import SpinepsDaskError
    from spineps_dask.models.folders import demo_model
    from spineps_dask.phantom.cohort import GROUNDTRUTH, write_bids_cohort

    work = args.work or Path(tempfile.mkdtemp(prefix="spineps-peer-"))
    for sub in ("bids", "spineps", "ours"):
        shutil.rmtree(work / sub, ignore_errors=True)
    scans = write_bids_cohort(
        work / "bids", subjects=args.subjects, seed=args.seed, region=args.region
    )
    sem_dir, inst_dir = demo_model("semantic"), demo_model("instance")
    lab_dir = demo_model("labeling") if args.labeling else None

    model_cache.set_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    sem_m, inst_m = model_cache.semantic_model(sem_dir), model_cache.instance_model(inst_dir)
    lab_m = model_cache.labeling_model(lab_dir) if lab_dir else None
    load_s = time.perf_counter() - t0

    rows, tables = [], {"spineps": [], "ours": []}
    for scan in scans:
        subject = scan.name.split("_")[0]
        truth = work / "bids" / GROUNDTRUTH / subject / "anat"
        peer = run_spineps(script, scan, work / "spineps", sem_dir, inst_dir, lab_dir, n4=args.n4)
        t0 = time.perf_counter()
        segment_file(scan, work / "ours" / subject, sem_m, inst_m, n4=args.n4, labeling_model=lab_m)
        ours_s = time.perf_counter() - t0
        row = {
            "subject": subject,
            "spineps_wall": peer["wall"],
            "spineps_pipeline": peer["pipeline"],
        }
        row["ours"], row["spineps_rc"] = ours_s, peer["rc"]
        for who, out in (("spineps", peer["out"]), ("ours", work / "ours" / subject)):
            try:
                df = score(out, scan, truth, subject)
            except (OSError, SpinepsDaskError) as exc:  # spineps failed: no masks to score
                print(f"{who} {subject}: not scored ({exc}); log {work / 'spineps' / subject}")
                row[f"{who}_sem"] = row[f"{who}_inst"] = row[f"{who}_ID"] = float("nan")
                continue
            tables[who].append(df)
            row[f"{who}_sem"], row[f"{who}_inst"], row[f"{who}_ID"] = headline(df)
        rows.append(row)

    table = pd.DataFrame(rows)
    print(
        f"cohort: {args.subjects} {args.region} phantoms, seed {args.seed}, N4 {args.n4}, "
        f"cores {os.cpu_count()}, demo models {sem_dir.parent}, "
        f"labelling {'demo model (-ml FOLDER)' if lab_dir else 'none (rule)'}"
    )
    print(f"ours: models loaded once in {load_s:.1f} s (not in the per-subject seconds)")
    print("seconds: spineps wall = whole `spineps sample` process (import, model load, run);")
    print("         spineps pipeline = its own 'Pipeline took'; ours = segment_file in-process")
    print("Dice: sem = mean global DSC of vertebra, IVD, canal, cord; inst = vertebra instance DSC")
    print("ID: share of reference vertebrae named right")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("mean global / instance Dice per structure:")
    from spineps_dask.metrics import summarize

    for who, dfs in tables.items():
        if not dfs:
            continue
        s = summarize(pd.concat(dfs, ignore_index=True))
        s = s[(s.metric == "DSC") & s.level.isin(["global", "instance"])]
        cells = ", ".join(f"{r.level[:4]} {r.structure} {r['mean']:.3f}" for _, r in s.iterrows())
        print(f"  {who}: {cells}")
    for who in ("spineps", "ours"):
        print(f"  {who}: vertebrae named right (mean ID) {table[f'{who}_ID'].mean():.3f}")
    failed = int(table.spineps_sem.isna().sum())
    print(f"spineps subjects without outputs: {failed}")
    ratio = table.spineps_wall.mean() / table.ours.mean()
    print(f"spineps/ours seconds per subject: {ratio:.2f}")


if __name__ == "__main__":
    main()
