"""Training and test data for the demo labelling model: phantom views and their patches.

A view is a phantom with a field of view chosen to be hard for counting rules: the four
generator regions (cervical, thoracic, lumbar, whole) plus crops without either anchor
(cervical below C2, thoracic from T1/T2 down, mid-lumbar above the sacrum), with T13 and L6
drawn more often than in the population so the classifier sees enough of them. Patches come
from the pipeline's own `vertebra_patches` on the ground-truth masks, so training sees what
inference feeds the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spineps_dask.labels import VERTEBRA_IDS, vertebra_sequence
from spineps_dask.pipeline.patches import PatchSettings, vertebra_patches
from spineps_dask.pipeline.sequence import CLASS_REGION, class_of

logger = logging.getLogger(__name__)

#: Kinds of view, and their share of the training set.
VIEW_MIX: dict[str, float] = {
    "whole": 0.18,
    "cervical": 0.14,
    "cervical_no_c2": 0.12,
    "thoracic": 0.14,
    "thoracic_only": 0.12,
    "lumbar": 0.14,
    "mid_lumbar": 0.16,
}
#: Views without C2 and without the sacrum.
UNANCHORED_VIEWS = ("cervical_no_c2", "thoracic", "thoracic_only", "mid_lumbar")
#: The reference's ``VertRel`` classes: 0 none, 1 last cervical, 2 first thoracic, 3 last
#: thoracic, 4 first lumbar, 5 last lumbar.
VERTREL_CLASSES = 6
HEADS: dict[str, int] = {"VERTEXACT": 26, "REGION": 3, "VERTREL": VERTREL_CLASSES}


def view_overrides(kind: str, seed: int, *, p_t13: float = 0.25, p_l6: float = 0.2) -> dict:
    """`make_phantom` overrides for one view of ``kind`` drawn from ``seed``.

    ``p_t13``, ``p_l6``: how often the spine has a T13 / L6 (``None`` leaves the phantom's own
    population draw). Crops set ``fov_levels`` (vertebra units along the column, see
    `PhantomSpec`).
    """
    rng = np.random.default_rng([int(seed), 11])
    out: dict = {}
    if p_t13 is not None:
        out["has_t13"] = bool(rng.random() < p_t13)
    if p_l6 is not None:
        out["has_l6"] = bool(rng.random() < p_l6)
    seq = vertebra_sequence(has_t13=out.get("has_t13", False), has_l6=out.get("has_l6", False))
    idx = {v: i for i, v in enumerate(seq)}
    t1, l1, sacrum = idx[VERTEBRA_IDS["T1"]], idx[VERTEBRA_IDS["L1"]], idx[VERTEBRA_IDS["S1"]]
    if kind in ("whole", "cervical", "thoracic", "lumbar"):
        if p_t13 is None and p_l6 is None:
            return {"region": kind}
        # fov_levels depend on the sequence: let the generator draw them for this spine
        return {"region": kind, **out}
    if kind == "cervical_no_c2":
        top, bottom = rng.uniform(2.15, 3.6), rng.uniform(t1 + 0.3, t1 + 3.0)
        region = "cervical"
    elif kind == "thoracic_only":
        top, bottom = rng.uniform(t1 + 0.05, t1 + 1.6), rng.uniform(l1 - 0.7, l1 + 1.6)
        region = "thoracic"
    elif kind == "mid_lumbar":
        top = rng.uniform(l1 - 1.2, l1 + 0.7)
        bottom = rng.uniform(l1 + 2.3, sacrum - 0.6)
        region = "lumbar"
    else:
        raise ValueError(f"unknown view kind {kind!r}; use one of {list(VIEW_MIX)}")
    return {"region": region, "c1_in_view": False, "fov_levels": (top, bottom), **out}


def draw_kind(seed: int) -> str:
    """A view kind for training subject ``seed``, by `VIEW_MIX`."""
    rng = np.random.default_rng([int(seed), 13])
    kinds = list(VIEW_MIX)
    return str(rng.choice(kinds, p=np.array([VIEW_MIX[k] for k in kinds])))


def vertrel_class(vid: int, seq: Sequence[int]) -> int:
    """The reference's region-boundary class (`VERTREL_CLASSES`) of vertebra ``vid`` in ``seq``.

    Examples
    --------
    >>> seq = vertebra_sequence()
    >>> [vertrel_class(v, seq) for v in (7, 8, 19, 20, 24, 12)]
    [1, 2, 3, 4, 5, 0]
    """
    lumbar = [v for v in seq if v in range(20, 26)]
    thoracic = [v for v in seq if v in (*range(8, 20), VERTEBRA_IDS["T13"])]
    if vid == VERTEBRA_IDS["C7"]:
        return 1
    if vid == VERTEBRA_IDS["T1"]:
        return 2
    if thoracic and vid == thoracic[-1]:
        return 3
    if vid == VERTEBRA_IDS["L1"]:
        return 4
    if lumbar and vid == lumbar[-1]:
        return 5
    return 0


@dataclass(frozen=True)
class ViewSample:
    """The patches of one view and their targets (one row per vertebra, top to bottom)."""

    seed: int
    kind: str
    ids: tuple[int, ...]
    patches: np.ndarray  # (N, X, Y, Z) float16
    targets: dict[str, np.ndarray]  # head -> (N,) int64


def view_sample(seed: int, kind: str, settings: PatchSettings, **overrides: object) -> ViewSample:
    """Make phantom ``seed`` as a ``kind`` view and cut its ground-truth patches."""
    from spineps_dask.phantom import make_phantom

    ph = make_phantom(seed, **{**view_overrides(kind, seed), **overrides})
    vp = vertebra_patches(ph.image, ph.instance, ph.semantic, settings=settings)
    seq = ph.spec.vertebrae
    classes = np.array([class_of(v) for v in vp.ids], dtype=np.int64)
    targets = {
        "VERTEXACT": classes,
        "REGION": np.array([CLASS_REGION[c] for c in classes], dtype=np.int64),
        "VERTREL": np.array([vertrel_class(v, seq) for v in vp.ids], dtype=np.int64),
    }
    return ViewSample(seed, kind, vp.ids, vp.patches.astype(np.float16), targets)
