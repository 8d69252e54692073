"""Anatomical labelling: C2 anchor, sacrum anchor, L6 / T13, unanchored fallback."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.labels import VERTEBRA_IDS as V
from spineps_dask.pipeline.labeling import (
    LabelingSettings,
    centroids,
    discs_above,
    label_vertebrae,
    relabel,
)

from .spine_builder import build_spine


def _names(labeling) -> list[int]:
    return [labeling.mapping[k] for k in sorted(labeling.mapping)]


def test_disc_above_flags_follow_the_discs():
    """Each disc is credited to the vertebra right below it."""
    sem, inst = build_spine([False, True, False, True])
    assert discs_above(inst, sem) == {1: False, 2: True, 3: False, 4: True}


def test_c2_anchor_when_top_vertebra_has_no_disc_above():
    """No disc above the top vertebra, discs above the next: the top one is C2."""
    sem, inst = build_spine([False, True, True, True, True])
    lab = label_vertebrae(inst, sem)
    assert lab.anchor == "C2" and lab.anchored
    assert _names(lab) == [V["C2"], V["C3"], V["C4"], V["C5"], V["C6"]]


def test_disc_fragment_does_not_hide_the_c2_anchor():
    """A few disc voxels above the top vertebra (a model's speck, far under a tenth of a real
    disc) neither credit it a disc nor cost the C2 anchor."""
    sem, inst = build_spine([False, True, True, True, True])
    top = int(np.argmax((inst == 1).any(axis=(0, 2))))
    sem[3, top - 2, 3] = 100
    assert not discs_above(inst, sem)[1]
    lab = label_vertebrae(inst, sem)
    assert lab.anchor == "C2" and _names(lab)[0] == V["C2"]
    sem[1:6, top - 2, 1:7] = 100  # a full-width disc there does count
    assert discs_above(inst, sem)[1]


def test_c1_above_c2_is_recognised():
    """Two discless vertebrae on top, then discs: C1 and C2."""
    sem, inst = build_spine([False, False, True, True])
    assert _names(label_vertebrae(inst, sem)) == [V["C1"], V["C2"], V["C3"], V["C4"]]
    # A false "disc" over C1 (skull base) does not hide the pair.
    sem, inst = build_spine([True, False, True, True])
    assert _names(label_vertebrae(inst, sem)) == [V["C1"], V["C2"], V["C3"], V["C4"]]


def test_sacrum_anchor_names_the_last_vertebra_l5():
    """Top vertebra has a disc above (mid-spine field of view) and a sacrum below: L2..L5."""
    sem, inst = build_spine([True, True, True, True], sacrum=True)
    lab = label_vertebrae(inst, sem)
    assert lab.anchor == "sacrum"
    assert _names(lab) == [V["L2"], V["L3"], V["L4"], V["L5"]]


def test_top_vertebra_cut_by_field_of_view_is_not_taken_for_c2():
    """A vertebra near the top of the view may have lost its disc: no C2 anchor, sacrum wins.

    "Near" is ``LabelingSettings.top_margin`` voxels between the vertebra and the top of the
    labelled view (the canal reaches the edge of a real field of view).
    """
    settings = LabelingSettings(top_margin=4)
    for margin in (0, 3):
        sem, inst = build_spine([False, True, True], sacrum=True, margin=margin)
        assert label_vertebrae(inst, sem, settings=settings).anchor == "sacrum", margin
    sem, inst = build_spine([False, True, True], sacrum=True, margin=4)
    assert label_vertebrae(inst, sem, settings=settings).anchor == "C2"


def test_c2_at_the_edge_over_an_extra_vertebra_is_not_called_c1():
    """24 vertebrae over the sacrum, the top one at the view's edge (no C2 anchor by margin):
    counting up from L5 would name it C1, but a disc lies under it and C1-C2 has none, so it
    is C2 and the spine has an L6. With a disc-less pair on top (C1, C2) the count stands."""
    settings = LabelingSettings(top_margin=8)
    sem, inst = build_spine([False] + [True] * 23, sacrum=True, margin=0)
    lab = label_vertebrae(inst, sem, settings=settings)
    assert lab.anchor == "C2" and lab.has_l6
    assert _names(lab)[0] == V["C2"] and _names(lab)[-1] == V["L6"]
    sem, inst = build_spine([False, False] + [True] * 22, sacrum=True, margin=0)
    lab = label_vertebrae(inst, sem, settings=settings)
    assert _names(lab)[:2] == [V["C1"], V["C2"]] and _names(lab)[-1] == V["L5"]


def test_whole_spine_with_c2_and_sacrum_is_c2_to_l5():
    """23 vertebrae from C2 to the sacrum: the normal count, last one L5, no variant."""
    sem, inst = build_spine([False] + [True] * 22, sacrum=True)
    lab = label_vertebrae(inst, sem)
    assert lab.anchor == "C2" and not lab.has_l6 and not lab.has_t13
    names = _names(lab)
    assert names[0] == V["C2"] and names[-1] == V["L5"] and names[-6] == V["T12"]


@pytest.mark.parametrize(
    ("extra", "flag", "last_two"),
    [("L6", "has_l6", ("L5", "L6")), ("T13", "has_t13", ("L4", "L5"))],
)
def test_one_extra_vertebra_from_c2_gives_l6_or_t13(extra, flag, last_two):
    """24 vertebrae from C2 to the sacrum: L6 (default) or T13 by setting."""
    sem, inst = build_spine([False] + [True] * 23, sacrum=True)
    lab = label_vertebrae(inst, sem, settings=LabelingSettings(extra_vertebra=extra))
    assert getattr(lab, flag)
    names = _names(lab)
    assert tuple(names[-2:]) == (V[last_two[0]], V[last_two[1]])
    if extra == "T13":
        assert names[18] == V["T13"] and names[17] == V["T12"]


@pytest.mark.parametrize(("cord_below", "named"), [(19, "L6"), (20, "T13"), (None, "L6")])
def test_end_of_the_cord_tells_t13_from_l6(cord_below, named):
    """24 vertebrae from C2 to the sacrum. Calling the extra one L6 names vertebra 19 (0-based
    from C2) L2 and vertebra 20 L3: a cord ending under L2 keeps L6; one ending under "L3",
    below the adult range of the conus, makes it T13 (which renames that vertebra L2). No cord
    in view: L6, the common call."""
    sem, inst = build_spine([False] + [True] * 23, sacrum=True, cord_below=cord_below)
    lab = label_vertebrae(inst, sem)
    assert (lab.has_t13, lab.has_l6) == (named == "T13", named == "L6")
    names = _names(lab)
    assert names[-1] == (V["L6"] if named == "L6" else V["L5"])
    if named == "T13":
        assert names[cord_below] == V["L2"] and names[18] == V["T13"]


def test_a_conus_broken_off_by_the_model_still_ends_the_cord():
    """The demo model can break the thin end of the cord off; a piece that starts less than
    half a vertebra below the rest continues the cord, so the T13 call of a cord ending under
    "L3" stands."""
    sem, inst = build_spine([False] + [True] * 23, sacrum=True, cord_below=20)
    centre = int(np.flatnonzero((inst == 21).any(axis=(0, 2))).mean())
    sem[0, centre : centre + 2, 3] = 61  # the cord above the break ends over "L3"'s centre
    assert label_vertebrae(inst, sem).has_t13


def test_a_cord_speck_below_the_conus_does_not_move_its_end():
    """The cord's end is taken from its largest piece: a model's speck of cord in the low
    lumbar canal does not turn an L6 spine into a T13 one."""
    sem, inst = build_spine([False] + [True] * 23, sacrum=True, cord_below=19)
    bottom = int(np.flatnonzero((inst == 22).any(axis=(0, 2)))[-1])  # under "L4"
    sem[0, bottom, 3] = 60
    assert label_vertebrae(inst, sem).has_l6


def test_no_anchor_labels_from_the_top_as_c2_and_flags_it():
    """Disc above the top vertebra and no sacrum: reference behaviour, flagged unanchored."""
    sem, inst = build_spine([True, True, True])
    lab = label_vertebrae(inst, sem)
    assert lab.anchor == "none" and not lab.anchored
    assert _names(lab) == [V["C2"], V["C3"], V["C4"]]


def test_relabel_moves_discs_and_endplates_with_their_vertebra():
    """Vertebra X -> Y also moves 100+X -> 100+Y and 200+X -> 200+Y; unmapped ids vanish."""
    inst = np.array([[[1, 101, 201, 2, 102, 3]]], np.uint16)
    out = relabel(inst, {1: 20, 2: 21})
    assert out.tolist() == [[[20, 120, 220, 21, 121, 0]]]


def test_centroids_in_voxels_and_mm():
    """Centroids follow the affine (scaling + translation)."""
    inst = np.zeros((4, 4, 4), np.uint16)
    inst[0:2, 0:2, 0:2] = 5
    aff = np.diag([2.0, 3.0, 0.5, 1.0])
    aff[:3, 3] = (10, 20, 30)
    assert centroids(inst) == {5: (0.5, 0.5, 0.5)}
    assert centroids(inst, affine=aff) == {5: (11.0, 21.5, 30.25)}
