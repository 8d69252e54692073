"""Post-processing: masks made consistent, leftovers, discs/endplates, full chain."""

from __future__ import annotations

import numpy as np

from spineps_dask.labels import VERTEBRA_IDS as V
from spineps_dask.labels import vertebra_sequence
from spineps_dask.pipeline import (
    CentreSettings,
    CutoutPrediction,
    MergeSettings,
    cutout_targets,
    find_centres,
    make_cutouts,
    merge_predictions,
    relabel,
)
from spineps_dask.pipeline.cutouts import crop_padded
from spineps_dask.pipeline.postprocess import (
    add_sacrum,
    assign_leftovers,
    attach_discs_endplates,
    merge_split_vertebrae,
    postprocess_instances,
    remove_outside_spine,
)

from .spine_builder import build_spine


def test_instance_outside_semantic_vertebra_is_removed():
    """Instance voxels over background, canal or disc are zeroed; over 41..50 kept."""
    sem = np.array([[[49, 41, 0, 61, 100, 50]]])
    inst = np.ones_like(sem, dtype=np.uint16)
    assert remove_outside_spine(inst, sem).tolist() == [[[1, 1, 0, 0, 0, 1]]]


def test_leftover_goes_to_neighbour_with_most_touching_voxels():
    """A leftover slab touching vertebra 1 on 2 faces and vertebra 2 on 6 faces joins 2."""
    sem = np.zeros((6, 12, 6), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    sem[:, 0:4] = 49
    inst[:, 0:4] = 1
    sem[:, 6:10] = 49
    inst[:, 6:10] = 2
    sem[2:4, 4, 2:3] = 41  # 2 voxels under vertebra 1 ...
    sem[1:4, 5, 1:3] = 41  # ... connected to 6 voxels on top of vertebra 2
    out = assign_leftovers(inst, sem)
    assert (out[2:4, 4, 2:3] == 2).all() and (out[1:4, 5, 1:3] == 2).all()
    assert (out[inst > 0] == inst[inst > 0]).all()


def test_leftover_strip_along_several_vertebrae_is_split_between_them():
    """A strip of unclaimed arch touching four vertebrae is no piece of one of them: each part
    goes to the vertebra it lies against, not the whole strip to the most-touching one."""
    sem = np.zeros((8, 40, 6), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    for k in range(4):
        sem[:4, 10 * k : 10 * k + 8] = 49
        inst[:4, 10 * k : 10 * k + 8] = k + 1
    sem[4:6, :, 2:4] = 41  # behind all four bodies
    sem[4:6, 30:38, 1:5] = 41  # wider behind the last: it touches most
    out = assign_leftovers(inst, sem)
    for k in range(4):
        assert (out[4:6, 10 * k + 1 : 10 * k + 7, 2:4] == k + 1).all(), k


def test_leftover_touching_nothing_stays_unlabelled():
    sem = np.zeros((5, 5, 5), np.uint8)
    sem[2, 2, 2] = 49
    assert assign_leftovers(np.zeros(sem.shape, np.uint16), sem).max() == 0


def test_discs_and_endplates_take_vertebra_above():
    """IVD L1-L2 -> 120 and both endplates around it -> 220; disc above L1 -> 119 (T12);
    an endplate touching no disc -> the vertebra above it (L2 -> 221)."""
    sem = np.zeros((4, 30, 4), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    sem[:, 0:2] = 100  # disc above the top vertebra
    sem[:, 2:8] = 49
    inst[:, 2:8] = V["L1"]
    sem[:, 8] = 62  # inferior endplate of L1
    sem[:, 9:11] = 100
    sem[:, 11] = 62  # superior endplate of L2
    sem[:, 12:18] = 49
    inst[:, 12:18] = V["L2"]
    sem[:, 18] = 62  # inferior endplate of L2, no disc below it
    sem[:, 19:25] = 49
    inst[:, 19:25] = V["L3"]
    out = attach_discs_endplates(inst, sem)
    assert (out[:, 0:2] == 100 + V["T12"]).all()
    assert (out[:, 9:11] == 100 + V["L1"]).all()
    assert (out[:, 8] == 200 + V["L1"]).all() and (out[:, 11] == 200 + V["L1"]).all()
    assert (out[:, 18] == 200 + V["L2"]).all()


def test_sacrum_becomes_s1():
    sem = np.array([[[26, 49]]])
    assert add_sacrum(np.zeros((1, 1, 2), np.uint16), sem).tolist() == [[[26, 0]]]


def test_full_chain_on_lumbar_spine_with_sacrum():
    """Four lumbar vertebrae above a sacrum: L2..L5, discs 101+.., S1, all in the semantic mask."""
    sem, inst = build_spine([True, True, True, True], sacrum=True)
    inst[sem == 0] = 3  # instance bleeding into the background is removed
    out, lab = postprocess_instances(inst, sem)
    assert lab.anchor == "sacrum"
    expected = (
        {V[f"L{i}"] for i in range(2, 6)} | {100 + V[f"L{i}"] for i in range(1, 6)} | {V["S1"]}
    )
    assert set(np.unique(out).tolist()) - {0} == expected
    assert not out[sem == 0].any()
    assert out.dtype == np.uint16


def test_whole_spine_oracle_chain_gives_c2_to_s1():
    """Centres -> cutouts -> oracle predictions -> merge -> post-processing on a synthetic C2..L5
    spine with sacrum: every vertebra, disc and S1 gets its anatomical id."""
    sem, inst = build_spine([False] + [True] * 22, sacrum=True)
    anatomy = vertebra_sequence()[1:-1]  # C2..L5
    gt = relabel(inst, dict(enumerate(anatomy, start=1)))
    # Bodies here are 6x5x6 voxels: erode by 1, keep >= 20 voxels.
    centres = find_centres(sem, settings=CentreSettings(erosion=1, corpus_size_cleaning=20))
    assert len(centres) == 23
    size = (8, 24, 8)
    preds = []
    for cut in make_cutouts(sem, centres, size=size):
        target = cutout_targets(crop_padded(gt, cut.origin, size), int(gt[cut.centre]))
        preds.append(CutoutPrediction.from_cutout(cut, target))
    merged = merge_predictions(preds, sem.shape, settings=MergeSettings(vert_size_threshold=50))
    final, labeling = postprocess_instances(merged, sem)
    assert labeling.anchor == "C2"
    for k, v in enumerate(anatomy, start=1):
        assert np.array_equal(final == v, inst == k), v
    discs = {int(x) for x in np.unique(final) if 100 < x < 200}
    assert discs == {100 + v for v in anatomy}
    assert (final[sem == 26] == 26).all()


def test_corpus_pieces_on_the_sacrum_are_sacrum_and_keep_the_l5_name():
    """A semantic model that calls bits of the sacrum "corpus" makes small extra vertebrae
    below L5 (seen end to end with the demo models); they become S1 instead of spoiling the
    names, and only when post-processing is on (the table-2 ablation keeps them)."""
    sem, inst = build_spine([True, True, True, True], sacrum=True)
    bottom = int(np.flatnonzero((sem == 26).any(axis=(0, 2)))[-1])
    for k, rows in enumerate(((bottom - 9, bottom - 7), (bottom - 4, bottom - 2)), start=5):
        sem[2:4, rows[0] : rows[1], 2:4] = 49  # two small "bodies" inside the sacrum
        inst[2:4, rows[0] : rows[1], 2:4] = k
    out, lab = postprocess_instances(inst, sem)
    assert lab.anchor == "sacrum"
    assert set(np.unique(out[inst == 4]).tolist()) == {V["L5"]}
    assert set(np.unique(out[inst >= 5]).tolist()) == {V["S1"]}
    raw, _ = postprocess_instances(inst, sem, clean=False)
    # Without post-processing the pieces stay vertebrae and the true L5 loses its name.
    assert V["S1"] not in np.unique(raw[inst >= 5])
    assert V["L5"] not in np.unique(raw[inst == 4])


def _split_bottom_rows(sem, inst, vertebra: int, rows: int, new_id: int) -> None:
    """Give the lowest ``rows`` rows of ``vertebra`` a new instance id (a split merge)."""
    ys = np.flatnonzero((inst == vertebra).any(axis=(0, 2)))
    piece = (inst == vertebra) & (np.arange(inst.shape[1]) >= ys[-1] - rows + 1)[None, :, None]
    inst[piece] = new_id


def test_piece_split_off_a_vertebra_joins_it_again_and_names_stay_right():
    """A third of L3 made its own instance (no disc above it, a third of its neighbours' size):
    it joins L3, and the sacrum-anchored names above it are not shifted by one."""
    sem, inst = build_spine([True, True, True, True], sacrum=True)
    _split_bottom_rows(sem, inst, 2, rows=2, new_id=9)
    joined = merge_split_vertebrae(inst, sem)
    assert 9 not in joined and (joined[inst == 9] == 2).all()
    out, lab = postprocess_instances(inst, sem)
    assert lab.anchor == "sacrum"
    assert [int(np.bincount(out[inst == k]).argmax()) for k in (1, 2, 3, 4)] == [
        V["L2"],
        V["L3"],
        V["L4"],
        V["L5"],
    ]


def test_fused_pair_and_the_top_two_vertebrae_are_not_joined():
    """Without a disc between them, a full-size vertebra (block vertebra) stays its own
    instance, and so does C2 under C1 (no disc there by anatomy), however small."""
    sem, inst = build_spine([True, True, False, True])
    assert (merge_split_vertebrae(inst, sem) == inst).all()
    sem, inst = build_spine([False, False, True, True])
    _split_bottom_rows(sem, inst, 2, rows=4, new_id=0)  # C2 a third of its neighbours' size
    assert (merge_split_vertebrae(inst, sem) == inst).all()


def test_lowest_vertebra_cut_by_the_view_is_not_joined():
    """The lowest vertebra, small because the view's edge cuts it, stays its own instance; the
    same small piece with the sacrum below it (not at the edge) joins the vertebra above."""
    sem, inst = build_spine([True, True, True, False], margin=0)
    top = int(np.flatnonzero((inst == 4).any(axis=(0, 2)))[0])
    sem, inst = sem[:, : top + 2].copy(), inst[:, : top + 2].copy()  # the view ends in it
    assert (merge_split_vertebrae(inst, sem) == inst).all()
    sem, inst = build_spine([True, True, True, True], sacrum=True)
    _split_bottom_rows(sem, inst, 4, rows=2, new_id=9)  # the lowest, over the sacrum
    joined = merge_split_vertebrae(inst, sem)
    assert 9 not in joined and (joined[inst == 9] == 4).all()
