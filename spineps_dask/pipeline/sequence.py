"""One consistent vertebra naming from per-vertebra class scores: a constrained sequence.

The labelling classifier scores every vertebra against 26 classes, C1..L6 with T13 and L6 as
classes of their own (the reference's ``VertExactClass`` axis, `spineps` 2.x). A spine, read
top to bottom, walks these classes one step at a time, except at the thoracolumbar junction:
after T12 comes T13 (rare) or L1 (normal), after T11 rarely L1 (11 thoracic vertebrae); L6
follows L5 in a few spines. The best walk for the vertebrae in view (Viterbi) is the naming;
the sum over all walks (forward algorithm) turns its score into a probability, the naming's
confidence, and gives each vertebra the probability of its own name.

Scores are log-probabilities; anchors (a vertebra known to be C2, the lowest one sitting on
the sacrum) add a bonus to their classes rather than forbid the rest, so a wrong anchor (a
semantic model's "sacrum" under a thoracic view) can be outvoted by the images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spineps_dask.labels import VERTEBRA_IDS

#: Vertebra id of each class, in order (the reference's ``VertExactClass``): C1..C7, T1..T12,
#: T13, L1..L6.
CLASS_IDS: tuple[int, ...] = (*range(1, 20), VERTEBRA_IDS["T13"], *range(20, 26))
N_CLASSES = len(CLASS_IDS)
_CLASS_OF = {v: k for k, v in enumerate(CLASS_IDS)}
#: Class index of landmarks.
C2, T11, T12, T13, L1, L5, L6 = (
    _CLASS_OF[VERTEBRA_IDS[n]] for n in ("C2", "T11", "T12", "T13", "L1", "L5", "L6")
)
#: Region of each class: 0 cervical, 1 thoracic (T13 included), 2 lumbar.
CLASS_REGION: tuple[int, ...] = tuple(0 if k < 7 else 1 if k < L1 else 2 for k in range(N_CLASSES))
REGIONS = ("cervical", "thoracic", "lumbar")


def class_of(vertebra_id: int) -> int:
    """Class index of a vertebra id (`labels.VERTEBRA_IDS`).

    Examples
    --------
    >>> class_of(8), class_of(28), class_of(20)
    (7, 19, 20)
    """
    return _CLASS_OF[int(vertebra_id)]


@dataclass(frozen=True)
class SequenceSettings:
    """Prior odds of the variants and how hard a single vertebra may pull.

    ``p_t13``, ``p_l6``, ``p_11_thoracic``: prior probability of a 13th thoracic, a 6th lumbar,
    and only 11 thoracic vertebrae. ``allow_t13=False`` forbids T13 (the reference's
    ``--enforce-12-thoracic``), ``allow_l6=False`` forbids L6. ``floor``: smallest probability
    a class score may have, so that one vertebra the classifier is sure about, wrongly, cannot
    veto the naming the others agree on. ``anchor_bonus``: log-odds added to an anchor's classes.
    """

    p_t13: float = 0.05
    p_l6: float = 0.05
    p_11_thoracic: float = 0.005
    allow_t13: bool = True
    allow_l6: bool = True
    floor: float = 1e-3
    anchor_bonus: float = 3.0


@dataclass(frozen=True)
class SequenceResult:
    """The best naming: a class per vertebra (top to bottom), its ids, its probability, and
    each vertebra's probability of carrying its name (marginal over all namings)."""

    classes: tuple[int, ...]
    ids: tuple[int, ...]
    probability: float
    marginals: tuple[float, ...]


def transitions(settings: SequenceSettings | None = None) -> np.ndarray:
    """``(26, 26)`` log-probability of class ``c`` right below class ``p`` (-inf: impossible).

    Examples
    --------
    >>> t = transitions()
    >>> c3, c4 = class_of(3), class_of(4)
    >>> bool(np.isfinite(t[c3, c4])), bool(np.isfinite(t[c4, c3]))
    (True, False)
    """
    s = settings or SequenceSettings()
    t = np.full((N_CLASSES, N_CLASSES), -np.inf)
    for p in range(N_CLASSES - 1):
        t[p, p + 1] = 0.0
    t[T11, T12] = np.log1p(-s.p_11_thoracic)
    t[T11, L1] = np.log(s.p_11_thoracic)
    t[T12, T13] = np.log(s.p_t13) if s.allow_t13 else -np.inf
    t[T12, L1] = np.log1p(-s.p_t13) if s.allow_t13 else 0.0
    t[L5, L6] = np.log(s.p_l6) if s.allow_l6 else -np.inf
    return t


def start_scores(settings: SequenceSettings | None = None) -> np.ndarray:
    """Log-prior of the top vertebra in view being each class (variants at their odds)."""
    s = settings or SequenceSettings()
    out = np.zeros(N_CLASSES)
    out[T13] = np.log(s.p_t13) if s.allow_t13 else -np.inf
    out[L6] = np.log(s.p_l6) if s.allow_l6 else -np.inf
    return out


def emission_scores(
    vertebra: np.ndarray,
    region: np.ndarray | None = None,
    *,
    region_weight: float = 1.0,
    settings: SequenceSettings | None = None,
) -> np.ndarray:
    """``(N, 26)`` log-scores from class posteriors ``(N, 26)`` and region posteriors ``(N, 3)``.

    Each posterior is floored at ``settings.floor`` and renormalised before the log.
    """
    s = settings or SequenceSettings()
    out = _log_floor(np.asarray(vertebra, dtype=float), s.floor)
    if region is not None and region_weight:
        reg = _log_floor(np.asarray(region, dtype=float), s.floor)
        out = out + region_weight * reg[:, list(CLASS_REGION)]
    return out


def _log_floor(p: np.ndarray, floor: float) -> np.ndarray:
    p = np.maximum(p, floor)
    return np.log(p / p.sum(axis=1, keepdims=True))


def add_anchors(
    scores: np.ndarray,
    anchors: Mapping[int, Sequence[int]],
    *,
    settings: SequenceSettings | None = None,
) -> np.ndarray:
    """``scores`` with ``settings.anchor_bonus`` added to the classes each anchor allows.

    ``anchors``: vertebra index (top to bottom) -> class indices it is known to be one of.
    """
    s = settings or SequenceSettings()
    out = np.array(scores, dtype=float)
    for i, classes in anchors.items():
        out[i, list(classes)] += s.anchor_bonus
    return out


def best_sequence(scores: np.ndarray, settings: SequenceSettings | None = None) -> SequenceResult:
    """The most probable naming for ``scores`` ``(N, 26)`` (vertebrae top to bottom).

    Raises
    ------
    ValueError
        For an empty score matrix or one that admits no naming (more vertebrae than classes).

    Examples
    --------
    >>> p = np.full((3, 26), 1e-3); p[[0, 1, 2], [class_of(20), class_of(21), class_of(21)]] = 1
    >>> best_sequence(np.log(p)).ids  # the third one cannot be L2 again: L3
    (20, 21, 22)
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != N_CLASSES or len(scores) == 0:
        raise ValueError(f"scores must be (N >= 1, {N_CLASSES}), got {scores.shape}")
    t, start = transitions(settings), start_scores(settings)
    n = len(scores)
    best = np.empty((n, N_CLASSES))
    back = np.zeros((n, N_CLASSES), dtype=int)
    best[0] = start + scores[0]
    for i in range(1, n):
        cand = best[i - 1][:, None] + t  # (previous, current)
        back[i] = cand.argmax(axis=0)
        best[i] = cand.max(axis=0) + scores[i]
    if not np.isfinite(best[-1]).any():
        raise ValueError(f"no valid naming for {n} vertebrae")
    path = [int(best[-1].argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    path.reverse()
    log_z, marg = _forward_backward(scores, t, start)
    prob = float(np.exp(best[-1].max() - log_z))
    return SequenceResult(
        classes=tuple(path),
        ids=tuple(CLASS_IDS[c] for c in path),
        probability=prob,
        marginals=tuple(float(marg[i, c]) for i, c in enumerate(path)),
    )


def _forward_backward(
    scores: np.ndarray, t: np.ndarray, start: np.ndarray
) -> tuple[float, np.ndarray]:
    """log Z over all valid namings and each vertebra's class marginals ``(N, 26)``."""
    n = len(scores)
    fwd = np.empty((n, N_CLASSES))
    bwd = np.zeros((n, N_CLASSES))
    fwd[0] = start + scores[0]
    for i in range(1, n):
        fwd[i] = _logsumexp(fwd[i - 1][:, None] + t, axis=0) + scores[i]
    for i in range(n - 2, -1, -1):
        bwd[i] = _logsumexp(t + (scores[i + 1] + bwd[i + 1])[None, :], axis=1)
    log_z = float(_logsumexp(fwd[-1], axis=0))
    with np.errstate(invalid="ignore"):
        marg = np.exp(fwd + bwd - log_z)
    return log_z, np.nan_to_num(marg)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(a - top), axis=axis))
