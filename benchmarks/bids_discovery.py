"""Discovering the scans of a large BIDS tree: `discover_scans` against bids2table's index.

Writes a tree of empty files laid out as a real cohort (``--subjects`` x 2 sessions x 2
whole-spine stations ``chunk-1/2``, each scan with its JSON sidecar, a few other files per
session) and times, best of ``--repeat``:

- `spineps_dask.io.cohort.discover_scans`: glob the anat folders, parse every name with
  bids2table, check it against the BIDS schema's entity rules (`bidsschematools`);
- ``bids2table.index_dataset``: the library's own whole-dataset index (every file, to Arrow).

    python benchmarks/bids_discovery.py --subjects 2500      # 10 000 scans
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def write_tree(root: Path, subjects: int) -> int:
    """Empty files as a cohort lays them out; returns the number of T2w scans."""
    n = 0
    for s in range(1, subjects + 1):
        for ses in (1, 2):
            anat = root / f"sub-{s:05d}" / f"ses-{ses}" / "anat"
            anat.mkdir(parents=True)
            for chunk in (1, 2):
                stem = f"sub-{s:05d}_ses-{ses}_acq-sag_chunk-{chunk}_T2w"
                (anat / f"{stem}.nii.gz").touch()
                (anat / f"{stem}.json").touch()
                n += 1
            (anat / f"sub-{s:05d}_ses-{ses}_T1w.nii.gz").touch()
            (root / f"sub-{s:05d}" / f"ses-{ses}" / f"sub-{s:05d}_ses-{ses}_scans.tsv").touch()
    (root / "dataset_description.json").write_text('{"Name": "bench", "BIDSVersion": "1.9.0"}')
    return n


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import bids2table

    from spineps_dask.io.cohort import discover_scans

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bids"
        t0 = time.perf_counter()
        n = write_tree(root, args.subjects)
        print(f"tree: {n} T2w scans ({args.subjects} subjects) in {time.perf_counter() - t0:.1f} s")
        seconds, scans = best_of(lambda: discover_scans(root), args.repeat)
        bad = sum(s.error is not None for s in scans)  # type: ignore[union-attr]
        print(f"discover_scans: {len(scans)} scans, {bad} refused, {seconds:.2f} s")  # type: ignore[arg-type]
        seconds, table = best_of(lambda: bids2table.index_dataset(root), args.repeat)
        print(f"bids2table.index_dataset: {table.num_rows} files, {seconds:.2f} s")  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
