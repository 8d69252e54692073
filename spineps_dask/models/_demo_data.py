"""Training data for the demo models: phantoms in model space, cached, and patch samplers.

Arrays are P-I-R (the models' orientation) at the demo resolution. Semantic inputs go through
nnU-Net's own ``DefaultPreprocessor`` (z-score, resampling), exactly as at inference; instance
inputs are cutouts made by the pipeline's ``make_cutouts`` (training matches inference).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spineps_dask.geometry import resample
from spineps_dask.labels import Semantic

logger = logging.getLogger(__name__)

PIR = ("P", "I", "R")
#: Semantic structures the demo semantic model predicts, as nnU-Net classes 1..14 (the
#: phantom draws all of them; 50 corpus border is not drawn, so it is not a class).
SEMANTIC_CLASSES: tuple[int, ...] = (41, 42, 43, 44, 45, 46, 47, 48, 49, 26, 60, 61, 62, 100)


def semantic_to_index(semantic: np.ndarray) -> np.ndarray:
    """SPINEPS semantic labels -> nnU-Net class indices (uint8; unknown labels -> 0)."""
    lut = np.zeros(256, dtype=np.uint8)
    for i, lab in enumerate(SEMANTIC_CLASSES, start=1):
        lut[lab] = i
    return lut[semantic.astype(np.intp)]


@dataclass(frozen=True)
class Case:
    """One training subject in model space: nnU-Net input + target, and GT masks for cutouts."""

    data: np.ndarray  # (1, X, Y, Z) float32, nnU-Net preprocessed
    seg: np.ndarray  # (1, X, Y, Z) int8, class indices on the same grid
    semantic: np.ndarray  # (X', Y', Z') uint8 SPINEPS labels at the instance resolution
    instance: np.ndarray  # (X', Y', Z') uint16 instance ids at the instance resolution


def prepare_case(
    seed: int,
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    *,
    instance_spacing: Sequence[float],
) -> Case:
    """Generate phantom ``seed`` and bring it into both models' spaces."""
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from spineps_dask.phantom import make_phantom

    ph = make_phantom(seed)
    image, sem, inst = (v.reorient(PIR) for v in (ph.image, ph.semantic, ph.instance))
    pm = PlansManager(dict(plans))
    cm = pm.get_configuration("3d_fullres")
    props = {"spacing": list(image.spacing)}
    data, seg, _ = DefaultPreprocessor(verbose=False).run_case_npy(
        image.data[None].astype(np.float32),
        semantic_to_index(sem.data)[None].astype(np.int16),
        props,
        pm,
        cm,
        dict(dataset_json),
    )
    sem_i = resample(sem, instance_spacing, order=0)
    inst_i = resample(inst, shape=sem_i.shape, order=0)
    return Case(data.astype(np.float32), seg.astype(np.int8), sem_i.data, inst_i.data)


def load_cases(
    seeds: Sequence[int],
    cache: Path,
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    *,
    instance_spacing: Sequence[float],
) -> list[Case]:
    """Cases for ``seeds``, generated once into ``cache`` (one ``.npz`` per seed, atomic)."""
    cache.mkdir(parents=True, exist_ok=True)
    cases = []
    for seed in seeds:
        path = cache / f"case_{seed:05d}.npz"
        if not path.exists():
            case = prepare_case(seed, plans, dataset_json, instance_spacing=instance_spacing)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, **case.__dict__)
            tmp.replace(path)
            logger.info("prepared phantom %d: %s", seed, case.data.shape)
        with np.load(path) as z:
            cases.append(Case(z["data"], z["seg"], z["semantic"], z["instance"]))
    return cases


def class_coords(seg: np.ndarray, rng: np.random.Generator, *, per_class: int = 500) -> list:
    """A few voxel coordinates of each present class (for foreground-oversampled patches)."""
    out = []
    for c in np.unique(seg):
        if c <= 0:
            continue
        coords = np.argwhere(seg[0] == c)
        take = rng.choice(len(coords), size=min(per_class, len(coords)), replace=False)
        out.append(coords[take])
    return out


def sample_patch(
    case: Case,
    coords: list,
    patch: Sequence[int],
    rng: np.random.Generator,
    *,
    fg_prob: float = 0.67,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(1, *patch)`` image/target pair, centred on a random class two times in three.

    Picking the class first, then a voxel of it, lets small structures (processes, endplates)
    be seen as often as bodies (nnU-Net oversamples foreground for the same reason).
    """
    data, seg = case.data, case.seg
    pad = [(0, 0)] + [
        (max(0, p - s) // 2, max(0, p - s) - max(0, p - s) // 2)
        for p, s in zip(patch, data.shape[1:], strict=True)
    ]
    if any(a or b for a, b in pad):
        data, seg = np.pad(data, pad), np.pad(seg, pad)
    shape = np.array(data.shape[1:])
    size = np.array(patch)
    if coords and rng.random() < fg_prob:
        pts = coords[rng.integers(len(coords))]
        centre = pts[rng.integers(len(pts))] + [p[0] for p in pad[1:]]
        start = np.clip(centre - size // 2 + rng.integers(-8, 9, 3), 0, shape - size)
    else:
        start = rng.integers(0, shape - size + 1)
    sl = (slice(None), *(slice(int(a), int(a + b)) for a, b in zip(start, size, strict=True)))
    return data[sl], seg[sl]


def body_centres(semantic: np.ndarray, instance: np.ndarray, *, min_voxels: int) -> dict[int, Any]:
    """GT vertebral-body centre of each vertebra (its voxels labelled corpus), sacrum excluded."""
    body = semantic == Semantic.CORPUS
    out = {}
    for v in np.unique(instance[body]):
        if v == 0 or v >= 100 or v == 26:
            continue
        pts = np.argwhere(body & (instance == v))
        if len(pts) >= min_voxels:
            out[int(v)] = pts.mean(axis=0)
    return out
