"""Training data for the demo models: phantoms in model space, cached, and patch samplers.

Training sees what inference feeds the networks, through the same functions (issue 22, the
reference recipe of `spineps` 2.1.3): the phantom image is prepared (`pipeline.preprocess`),
rescaled to the model grid by the cubic spline (`geometry.rescale`) and normalised into float16
(`nnunet_input.reference_network_input`); its labels go to the same grid by nearest neighbour.
The instance model's masks are made from the model-grid labels by nearest neighbour onto the
instance grid, as the reference makes its instance input; cutouts come from the pipeline's
``make_cutouts``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from spineps_dask.geometry import Volume, reference_zoom, rescale
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
    *,
    semantic_grid: tuple[Sequence[str], Sequence[float]],
    instance_spacing: Sequence[float],
    appearance: str = "t2w",
    textbook_sac: float = 0.0,
    drawn_sac: float = 0.0,
) -> Case:
    """Generate phantom ``seed`` (with ``appearance``) and bring it into both models' spaces.

    ``semantic_grid``: the semantic model's (``model_expected_orientation``,
    ``resolution_range``); ``textbook_sac``, ``drawn_sac``: `phantom.sample_spec`'s.
    """
    from spineps_dask.phantom import make_phantom, sample_spec

    spec = sample_spec(seed, appearance=appearance, textbook_sac=textbook_sac, drawn_sac=drawn_sac)
    ph = make_phantom(spec)
    return case_from_volumes(
        ph.image,
        ph.semantic,
        ph.instance,
        plans,
        semantic_grid=semantic_grid,
        instance_spacing=instance_spacing,
    )


def case_from_volumes(
    image: Volume,
    semantic: Volume,
    instance: Volume,
    plans: Mapping[str, Any],
    *,
    semantic_grid: tuple[Sequence[str], Sequence[float]],
    instance_spacing: Sequence[float],
) -> Case:
    """A scan and its true masks in both models' spaces, as inference would see the scan (a
    phantom's, or a real crop's for `benchmarks/real_crop_gap.py`)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from spineps_dask.models.nnunet_input import reference_network_input
    from spineps_dask.pipeline.preprocess import PreprocessSettings, crop_pad, preprocess

    orientation, resolution = semantic_grid
    prepared, record = preprocess(image, settings=PreprocessSettings(recipe="reference"))
    model_image = rescale(prepared.reorient(orientation), resolution, order=3)
    labels = [
        rescale(crop_pad(v, record).reorient(orientation), resolution, order=0)
        for v in (semantic, instance)
    ]
    pm = PlansManager(dict(plans))
    spacing = tuple(float(z) for z in reference_zoom(model_image.affine)[::-1])
    data, props = reference_network_input(
        np.asarray(model_image.data).transpose(2, 1, 0)[None],
        spacing,
        pm,
        pm.get_configuration("3d_fullres"),
    )
    box = tuple(slice(a, b) for a, b in props["bbox_used_for_cropping"])
    seg = semantic_to_index(np.asarray(labels[0].data).transpose(2, 1, 0))[box][None]
    sem_i, inst_i = (
        rescale(Volume(v.data, v.affine).reorient(PIR), instance_spacing, order=0) for v in labels
    )
    return Case(data.astype(np.float32), seg.astype(np.int8), sem_i.data, inst_i.data)


def case_path(
    cache: Path,
    seed: int,
    appearance: str = "t2w",
    textbook_sac: float = 0.0,
    drawn_sac: float = 0.0,
) -> Path:
    """Where a seed's prepared case is cached: named by its phantom spec's digest too, so a
    spec that changed under the same seed (issue 17 drew the cord place and the sac inset into
    random looks) is prepared again instead of read stale from an older ``out/.cache``."""
    import hashlib

    from spineps_dask.phantom import sample_spec

    spec = sample_spec(seed, appearance=appearance, textbook_sac=textbook_sac, drawn_sac=drawn_sac)
    digest = hashlib.sha1(repr(spec).encode()).hexdigest()
    look = "" if appearance == "t2w" else f"_{appearance}"
    return cache / f"case_{seed:05d}{look}_{digest[:10]}_reference.npz"  # the recipe of issue 22


def load_cases(
    seeds: Sequence[int],
    cache: Path,
    plans: Mapping[str, Any],
    *,
    semantic_grid: tuple[Sequence[str], Sequence[float]],
    instance_spacing: Sequence[float],
    appearance: str = "t2w",
    textbook_sac: float = 0.0,
    drawn_sac: float = 0.0,
    workers: int = 1,
) -> list[Case]:
    """Cases for ``seeds``, generated once into ``cache`` (one ``.npz`` per seed, atomic).

    ``workers``: processes preparing the missing ones at once (a phantom takes seconds; a run
    prepares over a hundred). A case depends on its seed alone, so the cache is the same
    whatever the count.
    """
    cache.mkdir(parents=True, exist_ok=True)
    paths = {seed: case_path(cache, seed, appearance, textbook_sac, drawn_sac) for seed in seeds}
    missing = [(seed, path) for seed, path in paths.items() if not path.exists()]
    write = partial(
        _write_case,
        plans=plans,
        semantic_grid=semantic_grid,
        instance_spacing=instance_spacing,
        appearance=appearance,
        textbook_sac=textbook_sac,
        drawn_sac=drawn_sac,
    )
    if workers > 1 and len(missing) > 1:
        # Spawned, not forked: a fork of a process whose torch/OpenMP threads have run can hang.
        pool = ProcessPoolExecutor(
            min(workers, len(missing)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_one_thread,
        )
        with pool:
            shapes = pool.map(write, *zip(*missing, strict=True))
            for (seed, _), shape in zip(missing, shapes, strict=True):
                logger.info("prepared phantom %d: %s", seed, shape)
    else:
        for seed, path in missing:
            logger.info("prepared phantom %d: %s", seed, write(seed, path))
    cases = []
    for seed in seeds:
        with np.load(paths[seed]) as z:
            cases.append(Case(z["data"], z["seg"], z["semantic"], z["instance"]))
    return cases


def _write_case(seed: int, path: Path, **grids: Any) -> tuple[int, ...]:
    """Prepare one case into its cache ``path`` (atomic rename); its data shape, for the log."""
    case = prepare_case(seed, **grids)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **case.__dict__)
    tmp.replace(path)
    return case.data.shape


def _one_thread() -> None:
    """A preparing process uses one core: the pool's size is the run's share of the machine."""
    import torch

    torch.set_num_threads(1)


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


def field_of_view(
    shape: Sequence[int], rng: np.random.Generator, *, axis_p: float = 0.5, min_share: float = 0.35
) -> np.ndarray:
    """Where a scan whose field of view ends inside the network's window has voxels (True).

    nnU-Net's sliding window pads a scan smaller than its patch with zeros, and its training
    loader lets patches hang over the image's edge for the same reason
    (`nnunetv2.training.dataloading.data_loader.get_bbox`); patches cut from inside a phantom
    never show that edge. Each axis is cut with probability ``axis_p`` to a kept run of
    ``min_share``..1 of its length, at a random place (issue 17: the tptbox crop is 78 mm
    tall, the window 144 mm, and its first and last vertebrae were lost at that edge).
    """
    keep = np.ones(tuple(shape), bool)
    for axis, size in enumerate(shape):
        if rng.random() >= axis_p:
            continue
        length = round(size * rng.uniform(min_share, 1.0))
        start = int(rng.integers(0, size - length + 1))
        index = [slice(None)] * len(shape)
        index[axis] = np.r_[0:start, start + length : size]
        keep[tuple(index)] = False
    return keep


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
