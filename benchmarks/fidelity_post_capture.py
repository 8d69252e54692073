"""Capture what `spineps` 2.1.3's post-processing phase receives and returns, scan by scan.

Runs with the *reference's* Python (its own virtual environment), never this project's; it
imports only spineps, TPTBox and what they bring (numpy, scipy, nibabel). It wraps
``phase_postprocess_combined`` where ``spineps.seg_run`` calls it, runs ``segment_image`` with
``-ml none`` (no labelling model) and no N4, and writes one ``.npz`` per scan for
`tests/pipeline/test_reference_post.py`:

- ``seg_in`` / ``vert_in``: the semantic and merged instance masks handed to the phase, on the
  scan grid, in the scan's own orientation;
- ``seg_out`` / ``vert_out``: what the phase returned;
- ``orientation`` (axis codes), ``zoom`` (mm per array axis), ``affine``;
- ``box_start`` / ``full_shape``: the arrays are cut to the box around every non-zero input
  voxel plus a margin (``MARGIN`` voxels), which changes nothing the phase computes (all zero
  outside that box), to keep each file small;
- ``kwargs``: the phase's keyword arguments that are plain values (JSON).

    /work/refvenv/bin/python benchmarks/fidelity_post_capture.py OUT SEM_FOLDER INST_FOLDER SCAN...

The scans rarely reach some branches (a split top vertebra, stray arch pieces, ids above 25),
so a second mode edits captured inputs to provoke them, stores the result in another
orientation and runs the phase itself on it, written the same way (``variant`` in ``meta``):

    /work/refvenv/bin/python benchmarks/fidelity_post_capture.py variants OUT CAPTURE.npz...

The committed fixtures (``tests/pipeline/data/reference_post``) came from the demo models on
``spineps-dask phantom PHANTOMS --subjects 6 --seed 7`` (sub-002 and sub-005 stop in the
reference's instance phase: no vertebral body found) and TPTBox's real crop
``tests/sample_mri/sub-mri_label-6_T2w.nii.gz`` copied as ``sub-tptbox_T2w.nii.gz``::

    python benchmarks/fidelity_post_capture.py CAPTURE spineps_dask/demo_models/semantic \
        spineps_dask/demo_models/instance TPTBOX/sub-tptbox_T2w.nii.gz PHANTOMS/sub-*/anat/*.nii.gz
    python benchmarks/fidelity_post_capture.py variants CAPTURE_VARIANTS CAPTURE/*.npz
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SPINEPS_NO_CITATION_REMINDER", "1")

import numpy as np
from reference_runs import reference_runs

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


def _save(store: dict, path: Path, variant: str | None = None) -> dict:
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
    if variant is not None:
        meta["variant"] = variant
    np.savez_compressed(path, affine=store["affine"], meta=json.dumps(meta), **arrays)
    return meta


def _reorient(arr: np.ndarray, codes_from: str, codes_to: str) -> np.ndarray:
    from nibabel import orientations as nio

    move = nio.ornt_transform(
        nio.axcodes2ornt(tuple(codes_from)), nio.axcodes2ornt(tuple(codes_to))
    )
    return np.ascontiguousarray(nio.apply_orientation(arr, move))


def _split_end(sem: np.ndarray, vert: np.ndarray, *, top: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cut the top (or bottom) vertebra's outer quarter into an instance of its own and drop
    the discs and endplates on the rows of that vertebra and beyond, so two vertebra pieces
    lead the reference's height order (arrays in P-I-R, axis 1 inferior)."""
    out = vert.astype(np.uint16)
    ids = [int(i) for i in np.unique(vert) if i]
    rows = {i: np.nonzero(vert == i)[1] for i in ids}
    end = (min if top else max)(ids, key=lambda i: rows[i].mean())
    lo, hi = rows[end].min(), rows[end].max()
    axis = np.arange(vert.shape[1])[None, :, None]
    piece = (vert == end) & (
        (axis < lo + 0.25 * (hi - lo)) if top else (axis > hi - 0.25 * (hi - lo))
    )
    out[piece] = max(ids) + 1
    beyond = (axis <= hi) if top else (axis >= lo)
    sem = np.where(np.isin(sem, (62, 100)) & beyond, 0, sem).astype(sem.dtype)
    return sem, out


def _split_top(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """A split top vertebra: merged in a scan whose axis 1 points inferior (or posterior...)."""
    return _split_end(sem, vert, top=True)


def _split_bottom(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """A split bottom vertebra: merged only where axis 1 of the scan points superior."""
    return _split_end(sem, vert, top=False)


def _stray_arches(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """Tips of each spinous process and arch given to the next vertebra down (P-I-R)."""
    out = vert.astype(np.uint16)
    ids = [int(i) for i in np.unique(vert) if i]
    ids.sort(key=lambda i: np.nonzero(vert == i)[1].mean())
    for upper, lower in itertools.pairwise(ids):
        for part in (42, 41):
            where = (vert == upper) & (sem == part)
            if where.sum() < 10:
                continue
            depth = np.nonzero(where)[0]
            tip = where & (np.arange(vert.shape[0])[:, None, None] >= np.percentile(depth, 85))
            out[tip] = lower
    return sem, out


def _shuffle_and_punch(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """Ids permuted into 1..30 (some above 25), holes punched, random blocks mislabelled."""
    ids = [int(i) for i in np.unique(vert) if i]
    new = rng.choice(np.arange(1, 31), size=len(ids), replace=False)
    table = np.zeros(int(vert.max()) + 1, dtype=np.uint16)
    table[ids] = new
    out = table[vert]
    for _ in range(12):
        size = rng.integers(2, 9, size=3)
        start = [int(rng.integers(0, max(n - s, 1))) for n, s in zip(out.shape, size, strict=True)]
        box = tuple(slice(a, a + int(s)) for a, s in zip(start, size, strict=True))
        out[box] = 0 if rng.random() < 0.5 else int(rng.choice(new))
    return sem, out


def _thirds(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """Every vertebra cut into three bands of rows, each its own instance: 25 or more ids, so
    the numbering runs into 26 (S1) and 28 (T13) and past the 25 / 40 limits (P-I-R)."""
    out = np.zeros(vert.shape, np.uint16)
    rows = np.arange(vert.shape[1])[None, :, None]
    new = 1
    for i in [int(i) for i in np.unique(vert) if i]:
        cuts = np.percentile(np.nonzero(vert == i)[1], [33, 66])
        band = np.digitize(rows, cuts)
        for b in range(3):
            out[(vert == i) & (band == b)] = new
            new += 1
    return sem, out


def _dens_metal_plates(sem: np.ndarray, vert: np.ndarray, rng: np.random.Generator):
    """Semantic labels the demo model never emits: the top body's upper third as dens (51), a
    metal (80) block, and endplate components alternately pre-split into 52 / 53 (P-I-R)."""
    from scipy import ndimage

    sem = sem.copy()
    ids = [int(i) for i in np.unique(vert) if i]
    top = min(ids, key=lambda i: np.nonzero(vert == i)[1].mean())
    body = (vert == top) & (sem == 49)
    rows = np.arange(sem.shape[1])[None, :, None]
    sem[body & (rows < np.percentile(np.nonzero(body)[1], 33))] = 51
    centre = np.argwhere(sem == 49)[len(np.argwhere(sem == 49)) // 2]
    block = tuple(slice(max(int(c) - 3, 0), int(c) + 3) for c in centre)
    sem[block][sem[block] != 0] = 80
    plates, n = ndimage.label(sem == 62, structure=np.ones((3, 3, 3), bool))
    for k in range(1, n + 1):
        sem[plates == k] = (52, 53, 62)[k % 3]
    return sem, vert


#: (capture, edit, orientation to store and run in, seed, labeling_offset or None = as captured)
VARIANTS = [
    ("sub-tptbox_T2w", _split_top, "PIR", 0, None),
    ("sub-tptbox_T2w", _split_top, "LPS", 0, None),
    ("sub-001_T2w", _split_bottom, "ASR", 1, None),
    ("sub-001_T2w", _split_bottom, "PIR", 1, None),
    ("sub-001_T2w", _stray_arches, "ASR", 2, None),
    ("sub-004_T2w", _stray_arches, "SRP", 3, None),
    ("sub-004_T2w", _shuffle_and_punch, "RAS", 4, None),
    ("sub-003_T2w", _shuffle_and_punch, "PIR", 5, None),
    ("sub-001_T2w", _thirds, "LAS", 6, None),
    ("sub-003_T2w", _thirds, "PIR", 7, 0),
    ("sub-003_T2w", _dens_metal_plates, "SPL", 8, 0),
    ("sub-tptbox_T2w", _dens_metal_plates, "PIR", 9, None),
]


def variants(out_dir: Path, captures: list[Path]) -> None:
    """Edit captured inputs (`VARIANTS`), run the reference phase on them, save like captures."""
    import nibabel as nib
    from spineps.phase_post import phase_postprocess_combined
    from TPTBox import NII

    by_name = {p.name.split(".")[0]: p for p in captures}
    for name, edit, codes, seed, offset in VARIANTS:
        if name not in by_name:
            continue
        data = np.load(by_name[name])
        meta = json.loads(str(data["meta"]))
        pir = {
            key: _reorient(data[key], meta["orientation"], "PIR") for key in ("seg_in", "vert_in")
        }
        sem, vert = edit(pir["seg_in"], pir["vert_in"], np.random.default_rng(seed))
        seg_n = _reorient(sem, "PIR", codes)
        vert_n = _reorient(vert, "PIR", codes)
        # A voxel grid in ``codes`` with the capture's spacing: only orientation and zoom matter.
        affine = _affine(codes, _zoom_in(meta["zoom"], meta["orientation"], codes))
        seg_nii = NII(nib.Nifti1Image(seg_n, affine), seg=True)
        vert_nii = NII(nib.Nifti1Image(vert_n, affine), seg=True)
        assert "".join(seg_nii.orientation) == codes, (seg_nii.orientation, codes)
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["kwargs"].items()}
        kwargs["debug_data"] = None
        if offset is not None:
            kwargs["labeling_offset"] = offset
        store = {
            "seg_in": seg_n,
            "vert_in": vert_n,
            "orientation": codes,
            "zoom": [float(z) for z in seg_nii.zoom],
            "affine": np.asarray(seg_nii.affine, dtype=float),
            "kwargs": meta["kwargs"] | {"labeling_offset": kwargs["labeling_offset"]},
        }
        seg_out, vert_out = phase_postprocess_combined(
            seg_nii.copy(), seg_nii.copy(), vert_nii, **kwargs
        )
        store["seg_out"], store["vert_out"] = seg_out.get_seg_array(), vert_out.get_seg_array()
        tag = f"{name}_{edit.__name__.strip('_')}_{codes}" + (
            "" if offset is None else f"_o{offset}"
        )
        written = _save(store, out_dir / f"variant-{tag}.npz", variant=tag)
        print(f"{tag}: {written['orientation']}, zoom {written['zoom']}", flush=True)


def _affine(codes: str, spacing: list[float]) -> np.ndarray:
    """Voxel -> RAS+ affine whose axes point along ``codes`` with the given spacing."""
    world = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    affine = np.eye(4)
    affine[:3, :3] = 0
    for axis, (code, mm) in enumerate(zip(codes, spacing, strict=True)):
        row, sign = world[code]
        affine[row, axis] = sign * mm
    return affine


def _zoom_in(zoom: list[float], codes_from: str, codes_to: str) -> list[float]:
    """Per-axis spacing of ``codes_from`` rearranged for the axes of ``codes_to``."""
    pairs = {"P": "PA", "A": "PA", "I": "IS", "S": "IS", "R": "RL", "L": "RL"}
    return [zoom[[pairs[c] for c in codes_from].index(pairs[c])] for c in codes_to]


def main(argv: list[str]) -> int:
    if argv and argv[0] == "variants":
        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        variants(out, [Path(p) for p in argv[2:]])
        return 0
    out, sem_folder, inst_folder, *scans = argv
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store: dict = {}
    _wrap_post(store)
    for name, result, seconds in reference_runs(
        sem_folder, inst_folder, scans, store, n4=False, tag="postcapture"
    ):
        if "seg_out" not in store:
            print(f"{name}: no post-processing reached ({result[-1]})", flush=True)
            continue
        meta = _save(store, out_dir / f"{name}.npz")
        print(f"{name}: {seconds:.1f} s, {meta['orientation']}, zoom {meta['zoom']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
