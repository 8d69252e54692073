"""The sequence solver that turns per-vertebra class scores into one consistent naming.

Protects: the Viterbi path equals the best of all valid namings found by brute force, and its
probability is its share of all of them (forward algorithm); one vertebra the classifier gets
wrong is outvoted by the others; T13 and L6 are named when the evidence says so and T13 is
impossible with ``allow_t13=False`` (the reference's ``--enforce-12-thoracic``); a naming
that a shift by one level explains almost as well is not confident; anchors pull, softly.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spineps_dask.pipeline.sequence import (
    CLASS_IDS,
    L5,
    L6,
    N_CLASSES,
    SequenceSettings,
    add_anchors,
    best_sequence,
    class_of,
    emission_scores,
    start_scores,
    transitions,
)


def _posteriors(ids, *, right=0.7, spill=0.1, rng=None):
    """Peaked posteriors for ``ids`` (vertebra ids), some mass on the neighbouring classes."""
    p = np.full((len(ids), N_CLASSES), 1e-3)
    for i, v in enumerate(ids):
        c = class_of(v)
        p[i, c] = right
        for d in (-1, 1):
            if 0 <= c + d < N_CLASSES:
                p[i, c + d] = spill
    if rng is not None:
        p *= rng.uniform(0.5, 1.5, size=p.shape)
    return p / p.sum(1, keepdims=True)


def _brute_force(scores, settings):
    t, start = transitions(settings), start_scores(settings)
    best, best_path, total = -np.inf, None, []
    for path in itertools.product(range(N_CLASSES), repeat=len(scores)):
        s = start[path[0]] + sum(scores[i, c] for i, c in enumerate(path))
        s += sum(t[a, b] for a, b in itertools.pairwise(path))
        if np.isfinite(s):
            total.append(s)
            if s > best:
                best, best_path = s, path
    return best_path, np.exp(best - np.logaddexp.reduce(total))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_and_probability_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = np.log(rng.dirichlet(np.full(N_CLASSES, 0.3), size=3))
    settings = SequenceSettings()
    path, prob = _brute_force(scores, settings)
    got = best_sequence(scores, settings)
    assert got.classes == tuple(path)
    assert got.probability == pytest.approx(prob, rel=1e-6)


def test_one_wrong_vertebra_is_outvoted():
    """T3..T10 with T6 scored as L2 with certainty: the others name it T6."""
    ids = list(range(10, 18))
    p = _posteriors(ids)
    p[3] = 1e-3
    p[3, class_of(21)] = 1.0
    got = best_sequence(emission_scores(p))
    assert got.ids == tuple(ids)
    assert got.probability > 0.9


def test_t13_and_l6_named_from_evidence():
    ids = [18, 19, 28, 20, 21, 22, 23, 24, 25]  # T11, T12, T13, L1..L6
    got = best_sequence(emission_scores(_posteriors(ids)))
    assert got.ids == tuple(ids)


def test_enforce_12_thoracic_forbids_t13():
    """With T13 forbidden the same evidence gives T12 -> L1 and shifts the rest by one."""
    ids = [18, 19, 28, 20, 21]
    got = best_sequence(emission_scores(_posteriors(ids)), SequenceSettings(allow_t13=False))
    assert 28 not in got.ids
    assert np.isneginf(transitions(SequenceSettings(allow_t13=False))[class_of(19), class_of(28)])


def test_ambiguous_shift_is_not_confident():
    """Every vertebra equally likely to be X or X+1: about half the probability each way."""
    ids = [21, 22, 23]
    p = np.full((3, N_CLASSES), 1e-3)
    for i, v in enumerate(ids):
        p[i, class_of(v)] = p[i, class_of(v) + 1] = 0.5
    got = best_sequence(emission_scores(p))
    assert got.probability < 0.6
    sure = best_sequence(emission_scores(_posteriors(ids, right=0.9, spill=0.02)))
    assert sure.probability > 0.95


def test_anchor_pulls_softly():
    """A lowest vertebra anchored as L5/L6 shifts an ambiguous naming; a strong contrary
    classifier still wins over the bonus."""
    ids = [21, 22, 23]
    p = np.full((3, N_CLASSES), 1e-3)
    for i, v in enumerate(ids):
        p[i, class_of(v)] = p[i, class_of(v) + 1] = 0.5
    scores = add_anchors(emission_scores(p), {2: (L5, L6)})
    assert best_sequence(scores).ids == (22, 23, 24)
    strong = emission_scores(_posteriors([8, 9, 10], right=0.98, spill=0.005))
    assert best_sequence(add_anchors(strong, {2: (L5, L6)})).ids == (8, 9, 10)


def test_class_axis_is_the_reference_one():
    """26 classes C1..T12, T13, L1..L6 (the reference's VertExactClass)."""
    assert len(CLASS_IDS) == N_CLASSES == 26
    assert CLASS_IDS[18:21] == (19, 28, 20)
    assert CLASS_IDS[-1] == 25


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="scores must be"):
        best_sequence(np.zeros((0, N_CLASSES)))
    with pytest.raises(ValueError, match="no valid naming"):
        best_sequence(np.zeros((30, N_CLASSES)))
