"""How a subject's vertebrae get their names, and with what confidence (issue 20).

Three ways, `NAMING_METHODS`:

- ``rule``: `labeling.label_vertebrae`, counting from C2 or the sacrum (from the top as C2 when
  neither is in view, flagged). Its result is already in the instance mask after
  post-processing; no model runs.
- ``model``: the labelling classifier's posteriors for every vertebra, turned into the one
  consistent naming by `sequence.best_sequence` (VERIDAH's approach, `spineps` 2.x).
- ``model+anchors``: the same, with the rule's cues (the vertebra the disc pattern calls C2,
  the lowest vertebra on the sacrum being L5 or L6) added as soft evidence.

A model naming's confidence is the probability of the whole naming among all valid ones (so a
naming that shifting by one level would explain almost as well scores low); under
``NamingSettings.low_confidence`` it is flagged, never hidden. A rule naming has no
probability; it is flagged when it had no anchor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spineps_dask.config import NAMING_METHODS
from spineps_dask.labels import IVD_OFFSET, VERTEBRA_IDS, vertebra_sequence
from spineps_dask.pipeline.labeling import LabelingSettings, anchor_positions, relabel
from spineps_dask.pipeline.sequence import (
    L5,
    L6,
    SequenceSettings,
    add_anchors,
    best_sequence,
    class_of,
    emission_scores,
)

_C2, _S1 = VERTEBRA_IDS["C2"], VERTEBRA_IDS["S1"]
#: Vertebrae from C2 to L5 in a spine without variants.
_C2_TO_L5 = 22
#: The dens of C2 (TPTBox ``Location.Dens_axis``) and the overlap that makes a vertebra C2
#: (reference ``phase_labeling.MIN_DENS_VOLUME_MM3``).
DENS = 51
DENS_MIN_MM3 = 250.0


@dataclass(frozen=True)
class NamingSettings:
    """How posteriors become a naming.

    ``method``: one of `NAMING_METHODS`. ``region_weight``: weight of the region head next to
    the 26-class head. ``low_confidence``: a model naming less probable than this is flagged.
    """

    method: str = "model+anchors"
    sequence: SequenceSettings = field(default_factory=SequenceSettings)
    region_weight: float = 1.0
    low_confidence: float = 0.7

    def __post_init__(self) -> None:
        if self.method not in NAMING_METHODS:
            raise ValueError(
                f"unknown naming method {self.method!r}; use one of {', '.join(NAMING_METHODS)}"
            )

    @property
    def uses_model(self) -> bool:
        return self.method != "rule"


@dataclass(frozen=True)
class Naming:
    """One subject's naming: instance id -> anatomical id, how, and how sure.

    ``mapping`` renames the vertebrae of the mask it was made for (empty for ``rule``, whose
    names are in the mask already). ``confidence``: the naming's probability (model
    methods; None for the rule). ``vertebra_confidence``: anatomical id -> probability of that
    vertebra's name. ``anchor``: the rule's anchor (C2, sacrum, none).
    """

    mapping: dict[int, int]
    method: str
    confidence: float | None
    low_confidence: bool
    anchor: str = "none"
    vertebra_confidence: dict[int, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-able description (the manifest's columns, the centroid file's header)."""
        return {
            "naming": self.method,
            "naming_confidence": None if self.confidence is None else round(self.confidence, 4),
            "naming_low_confidence": self.low_confidence,
            "anchor": self.anchor,
        }

    def record(self) -> dict[str, Any]:
        """`summary` plus each vertebra's confidence (``{"20": 0.98, ...}``): the instance
        mask's ``naming`` attribute and what the centroid file is written from."""
        per = {str(k): round(float(v), 4) for k, v in sorted(self.vertebra_confidence.items())}
        return {**self.summary(), "vertebra_confidence": per}


def rule_naming(anchor: str) -> Naming:
    """The rule's naming (already in the mask, so no mapping), flagged when it had no anchor.

    Examples
    --------
    >>> rule_naming("none").summary()["naming_low_confidence"]
    True
    """
    return Naming({}, "rule", None, low_confidence=anchor == "none", anchor=anchor)


def dens_vertebra(
    instance: np.ndarray, semantic: np.ndarray, *, voxel_mm3: float = 1.0
) -> int | None:
    """The vertebra holding most of the dens (semantic 51, which some published semantic
    models emit), if that is over `DENS_MIN_MM3`: C2, as the reference decides it.

    Examples
    --------
    >>> inst = np.array([[[3, 3, 4, 4]]]); sem = np.array([[[51, 51, 51, 49]]])
    >>> dens_vertebra(inst, sem, voxel_mm3=200.0)
    3
    """
    dens = (semantic == DENS) & (instance > 0) & (instance < IVD_OFFSET)
    if not dens.any():
        return None
    counts = np.bincount(instance[dens].astype(np.intp))
    best = int(counts.argmax())
    return best if counts[best] * voxel_mm3 > DENS_MIN_MM3 else None


def rule_anchors(
    instance: np.ndarray,
    semantic: np.ndarray,
    ids: Sequence[int],
    *,
    settings: LabelingSettings | None = None,
    voxel_mm3: float = 1.0,
) -> tuple[dict[int, tuple[int, ...]], str]:
    """The rule's cues as solver anchors: index in ``ids`` -> allowed classes, and the anchor
    name (``C2``, ``sacrum`` or ``none``) for the record.

    ``instance`` / ``semantic``: (P, I, R) arrays (axis 1 inferior) of the final masks. C2 is
    the vertebra holding the dens (`dens_vertebra`) when the semantic mask has one, else the
    disc pattern's. With the sacrum in view, a pattern "C2" that does not leave room for C2..L5
    (or L6) below it is the top of a cut view, not C2 (seen on phantom lumbar views), and is
    dropped.
    """
    c2, sacrum = anchor_positions(instance, semantic, settings=settings)
    ids = list(ids)
    dens = dens_vertebra(instance, semantic, voxel_mm3=voxel_mm3)
    if dens is not None and dens in ids:
        c2 = dens
    pattern_only = dens is None or dens not in ids
    if c2 is not None and (
        c2 not in ids or (pattern_only and sacrum and len(ids) - ids.index(c2) < _C2_TO_L5)
    ):
        c2 = None
    anchors: dict[int, tuple[int, ...]] = {}
    if c2 is not None:
        anchors[ids.index(c2)] = (class_of(_C2),)
    if sacrum and ids:
        anchors[len(ids) - 1] = (L5, L6)
    name = "C2" if c2 is not None else "sacrum" if sacrum else "none"
    return anchors, name


def model_naming(
    ids: Sequence[int],
    posteriors: Mapping[str, np.ndarray],
    *,
    vertebra_head: str = "VERTEXACT",
    anchors: Mapping[int, Sequence[int]] | None = None,
    anchor: str = "none",
    settings: NamingSettings | None = None,
) -> Naming:
    """A naming of ``ids`` (top to bottom) from the classifier's ``posteriors``.

    ``posteriors``: head -> ``(N, classes)`` softmax; ``vertebra_head`` (26 classes) is needed,
    ``REGION`` (3) is used when present. ``anchors`` (index -> classes) count only for
    ``model+anchors``.
    """
    s = settings or NamingSettings()
    if not ids:
        return Naming({}, s.method, None, low_confidence=False, anchor=anchor)
    scores = emission_scores(
        posteriors[vertebra_head],
        posteriors.get("REGION"),
        region_weight=s.region_weight,
        settings=s.sequence,
    )
    if anchors and s.method == "model+anchors":
        scores = add_anchors(scores, anchors, settings=s.sequence)
    result = best_sequence(scores, s.sequence)
    return Naming(
        mapping={int(v): int(n) for v, n in zip(ids, result.ids, strict=True)},
        method=s.method,
        confidence=result.probability,
        low_confidence=result.probability < s.low_confidence,
        anchor=anchor,
        vertebra_confidence={
            int(n): float(p) for n, p in zip(result.ids, result.marginals, strict=True)
        },
    )


def rename(instance: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Apply a vertebra renaming to a final instance mask: vertebrae, their discs (100+X) and
    endplates (200+X); the sacrum (26) stays. A disc or endplate of a vertebra above the view
    (the one over the top vertebra) follows the top vertebra's new name.

    Examples
    --------
    >>> m = np.array([[[7, 107, 207, 8, 26, 106]]], np.uint16)  # 106: disc above C7
    >>> rename(m, {7: 8, 8: 9}).tolist()
    [[[8, 108, 208, 9, 26, 107]]]
    """
    present = {int(i) for i in np.flatnonzero(np.bincount(instance.ravel().astype(np.intp)))}
    verts = {v for v in present if 0 < v < IVD_OFFSET and v != _S1}
    full = {int(k): int(v) for k, v in mapping.items() if k in verts}
    full[_S1] = _S1
    # The sacrum's own endplate (226: seen where the segmentation took the last lumbar
    # vertebra for the sacrum) is no orphan: the sacrum keeps its name.
    orphans = {p % IVD_OFFSET for p in present if p >= IVD_OFFSET} - verts - {0, _S1}
    if orphans and full:
        top_old = min(full, key=lambda v: _position(v))
        above = _above(full[top_old], full.values())
        for o in orphans:
            if above is not None:
                full[o] = above
    return relabel(instance, full)


def _position(vid: int) -> int:
    seq = vertebra_sequence(has_t13=True, has_l6=True)
    return seq.index(vid) if vid in seq else len(seq)


def _above(top: int, names: Any) -> int | None:
    """The name of the vertebra above ``top`` in the sequence ``names`` belong to (None above
    C2: C1-C2 has no disc)."""
    names = set(names)
    seq = vertebra_sequence(
        has_t13=VERTEBRA_IDS["T13"] in names, has_l6=VERTEBRA_IDS["L6"] in names
    )
    if top not in seq or seq.index(top) <= seq.index(_C2):
        return None
    return seq[seq.index(top) - 1]
