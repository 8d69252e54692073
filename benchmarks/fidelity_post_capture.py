"""Capture what `spineps` 2.1.3's post-processing phase receives and returns, scan by scan.

Runs with the *reference's* Python (its own virtual environment), never this project's; it
imports only spineps, TPTBox and numpy. It wraps ``phase_postprocess_combined`` where
``spineps.seg_run`` calls it, runs ``segment_image`` with ``-ml none`` (no labelling model)
and no N4, and writes one ``.npz`` per scan for `tests/pipeline/test_reference_post.py`:

- ``seg_in`` / ``vert_in``: the semantic and merged instance masks handed to the phase, on the
  scan grid, in the scan's own orientation;
- ``seg_out`` / ``vert_out``: what the phase returned;
- ``orientation`` (axis codes), ``zoom`` (mm per array axis), ``affine``;
- ``box_start`` / ``full_shape``: the arrays are cut to the box around every non-zero input
  voxel plus a margin (``MARGIN`` voxels), which changes nothing the phase computes (all zero
  outside that box), to keep each file small;
- ``kwargs``: the phase's keyword arguments that are plain values (JSON).

    /work/refvenv/bin/python benchmarks/fidelity_post_capture.py OUT SEM_FOLDER INST_FOLDER SCAN...
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SPINEPS_NO_CITATION_REMINDER", "1")

import numpy as np

#: Voxels kept around the non-zero box; more than the reference's own crop margin
#: (``int(1.5 mm / smallest zoom)``) for any zoom above 0.5 mm.
MARGIN = 3


def _box(*arrays: np.ndarray) -> tuple[slice, ...]:
    """Box around every non-zero voxel of ``arrays`` (same shape), grown by ``MARGIN``."""
    any_set = np.zeros(arrays[0].shape, dtype=bool)
    for arr in arrays:
        any_set |= arr != 0
    out = []
    for axis in range(any_set.ndim):
        others = tuple(a for a in range(any_set.ndim) if a != axis)
        idx = np.flatnonzero(any_set.any(axis=others))
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, any_set.shape[axis])
        out.append(slice(max(lo - MARGIN, 0), min(hi + MARGIN, any_set.shape[axis])))
    return tuple(out)


def _compact(arr: np.ndarray) -> np.ndarray:
    """Smallest unsigned dtype that holds the labels."""
    top = int(arr.max()) if arr.size else 0
    if int(arr.min()) < 0:
        raise ValueError(f"negative label {int(arr.min())}")
    return arr.astype(np.uint8 if top < 256 else np.uint16)


def _wrap_post(store: dict) -> None:
    """Record the inputs and outputs of every ``phase_postprocess_combined`` call."""
    from spineps import seg_run

    original = seg_run.phase_postprocess_combined

    def phase_postprocess_combined(*args, **kwargs):
        names = ("img_nii", "seg_nii", "vert_nii")
        bound = dict(zip(names, args, strict=False)) | kwargs
        seg_nii, vert_nii = bound["seg_nii"], bound["vert_nii"]
        # The phase crops ``seg_nii`` in place: read the inputs before it runs.
        store["seg_in"] = seg_nii.get_seg_array()
        store["vert_in"] = vert_nii.get_seg_array()
        store["orientation"] = "".join(seg_nii.orientation)
        store["zoom"] = [float(z) for z in seg_nii.zoom]
        store["affine"] = np.asarray(seg_nii.affine, dtype=float)
        store["kwargs"] = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in kwargs.items()
            if isinstance(v, int | float | bool | str | tuple) or v is None
        }
        seg_out, vert_out = original(*args, **kwargs)
        store["seg_out"] = seg_out.get_seg_array()
        store["vert_out"] = vert_out.get_seg_array()
        return seg_out, vert_out

    seg_run.phase_postprocess_combined = phase_postprocess_combined


def _save(store: dict, path: Path) -> dict:
    """Write one scan's capture, cut to its box; returns the metadata written."""
    box = _box(store["seg_in"], store["vert_in"], store["seg_out"], store["vert_out"])
    arrays = {k: _compact(store[k][box]) for k in ("seg_in", "vert_in", "seg_out", "vert_out")}
    meta = {
        "orientation": store["orientation"],
        "zoom": store["zoom"],
        "box_start": [s.start for s in box],
        "full_shape": list(store["seg_in"].shape),
        "kwargs": store["kwargs"],
    }
    np.savez_compressed(path, affine=store["affine"], meta=json.dumps(meta), **arrays)
    return meta


def main(argv: list[str]) -> int:
    out, sem_folder, inst_folder, *scans = argv
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from spineps.get_models import get_actual_model
    from spineps.seg_run import segment_image
    from TPTBox import BIDS_FILE

    store: dict = {}
    _wrap_post(store)
    sem = get_actual_model(sem_folder, use_cpu=True).load()
    inst = get_actual_model(inst_folder, use_cpu=True).load()
    for scan in scans:
        store.clear()
        path = Path(scan)
        t0 = time.perf_counter()
        result = segment_image(
            img_ref=BIDS_FILE(path, dataset=path.parent, verbose=False),
            model_semantic=sem,
            model_instance=inst,
            model_labeling=None,
            proc_sem_n4_bias_correction=False,
            return_output_instead_of_save=True,
            derivative_name=f"derivatives_postcapture_{os.getpid()}",
        )
        name = path.name.split(".")[0]
        if "seg_out" not in store:
            print(f"{name}: no post-processing reached ({result[-1]})", flush=True)
            continue
        meta = _save(store, out_dir / f"{name}.npz")
        seconds = time.perf_counter() - t0
        print(f"{name}: {seconds:.1f} s, {meta['orientation']}, zoom {meta['zoom']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
