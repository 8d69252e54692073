"""Reference mode of post-processing: the port of spineps 2.1.3's phase against its own output.

The fixtures in ``data/reference_post`` were written by ``benchmarks/fidelity_post_capture.py``
with spineps 2.1.3 itself: the masks handed to ``phase_postprocess_combined`` and the masks it
returned, in each scan's own orientation. Each is replayed here in P-I-R, as the pipeline
calls the port. The small tests below pin one reference behaviour each, several of them
checked against the TPTBox helpers the reference calls (TPTBox is a test extra).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from nibabel import orientations as nio
from scipy import ndimage

from spineps_dask.errors import InputError
from spineps_dask.pipeline.reference import (
    apply_overrides,
    assign_articular_processes,
    assign_missing_components,
    attach_discs_endplates,
    contact_threshold_voxels,
    fix_posterior_fragments,
    merge_split_top_vertebra,
    number_top_to_bottom,
    postprocess_like_reference,
    split_endplates,
)
from spineps_dask.pipeline.reference._arrays import (
    components,
    dilate_labels_in_mask,
    face_contacts,
    label_centroids,
)

DATA = Path(__file__).parent / "data" / "reference_post"
FIXTURES = sorted(DATA.glob("*.npz"))
requires_tptbox = pytest.mark.skipif(
    importlib.util.find_spec("TPTBox") is None, reason="tptbox (test extra) not installed"
)


def _to_pir(arr: np.ndarray, codes: str) -> np.ndarray:
    move = nio.ornt_transform(nio.axcodes2ornt(tuple(codes)), nio.axcodes2ornt(("P", "I", "R")))
    return np.ascontiguousarray(nio.apply_orientation(arr, move))


def _dice_per_label(ours: np.ndarray, ref: np.ndarray) -> dict[int, float]:
    labels = (set(np.unique(ours)) | set(np.unique(ref))) - {0}
    out = {}
    for lbl in sorted(int(v) for v in labels):
        a, b = ours == lbl, ref == lbl
        out[lbl] = 2 * float((a & b).sum()) / float(a.sum() + b.sum())
    return out


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_port_reproduces_captured_reference_output(path):
    """Same label sets, Dice >= 0.99 per label, then voxel-for-voxel equality."""
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    codes = meta["orientation"]
    sem, inst = postprocess_like_reference(
        _to_pir(data["seg_in"], codes),
        _to_pir(data["vert_in"], codes),
        zoom=tuple(meta["zoom"]),
        scan_orientation=codes,
        labeling_offset=meta["kwargs"]["labeling_offset"],
        sacrum_ids=tuple(meta["kwargs"]["sacrum_ids"]),
        metal_ids=tuple(meta["kwargs"]["metal_ids"]),
    )
    for name, ours, ref in (
        ("semantic", sem, _to_pir(data["seg_out"], codes)),
        ("instance", inst, _to_pir(data["vert_out"], codes)),
    ):
        dice = _dice_per_label(ours, ref)
        low = {k: round(v, 4) for k, v in dice.items() if v < 1}
        assert set(np.unique(ours)) == set(np.unique(ref)), f"{name} labels differ"
        assert min(dice.values()) >= 0.99, f"{name} Dice below 0.99: {low}"
        assert np.array_equal(ours, ref), f"{name}: {(ours != ref).sum()} voxels differ, {low}"


def test_there_are_captured_fixtures():
    """The fixtures must not silently vanish: four phantoms and the real crop as captured from
    the pipeline, plus edited inputs (``variant-*``) that reach the rarer branches."""
    variants = [p for p in FIXTURES if p.name.startswith("variant-")]
    assert len(FIXTURES) - len(variants) >= 5 and len(variants) >= 12


# --- primitives against the TPTBox helpers the reference calls --------------------------------


@requires_tptbox
@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_component_numbering_matches_cc3d(connectivity):
    """Components are numbered in C order of their first voxel, as cc3d numbers the C-ordered
    copies TPTBox passes it: the order decides volume ties among posterior fragments."""
    from TPTBox.core.np_utils import np_connected_components

    rng = np.random.default_rng(connectivity)
    mask = (rng.random((9, 11, 7)) > 0.7).astype(np.uint8)
    ref, n_ref = np_connected_components(mask.copy(), connectivity=connectivity)
    ours, n = components(mask, connectivity)
    assert n == n_ref and np.array_equal(ours, ref)


@requires_tptbox
def test_multilabel_growth_in_mask_matches_tptbox():
    """Growth by two face steps inside a mask equals TPTBox np_dilate_msk(use_crop=False):
    lower ids first, the mask applied after every label (not once per step)."""
    from TPTBox.core.np_utils import np_dilate_msk

    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 5, (10, 9, 8)) * (rng.random((10, 9, 8)) > 0.85)
        mask = (rng.random(labels.shape) > 0.3).astype(np.uint8)
        ref = np_dilate_msk(
            labels.copy(), None, n_pixel=2, connectivity=1, mask=mask, use_crop=False
        )
        ours = dilate_labels_in_mask(labels, mask, steps=2, connectivity=1)
        assert np.array_equal(ours, ref)


@requires_tptbox
def test_face_contacts_match_tptbox_contacts():
    """np_contacts(connectivity=3) reports face area: edge and corner touches count 0."""
    from TPTBox.core.np_utils import np_contacts

    rng = np.random.default_rng(5)
    arr = rng.integers(0, 3, (8, 9, 10)).astype(np.uint8)
    assert face_contacts(arr, 1, 2) == np_contacts(arr, connectivity=3)[(1, 2)]
    corner = np.zeros((4, 4, 4), np.uint8)
    corner[1, 1, 1], corner[2, 2, 2] = 1, 2
    assert face_contacts(corner, 1, 2) == 0 == np_contacts(corner, connectivity=3)[(1, 2)]


@requires_tptbox
def test_centroids_match_tptbox_exactly():
    """Centres are bit-identical to np_center_of_mass, so centre ties stay ties."""
    from TPTBox.core.np_utils import np_center_of_mass

    rng = np.random.default_rng(7)
    arr = (rng.integers(0, 6, (12, 30, 9)) * (rng.random((12, 30, 9)) > 0.5)).astype(np.uint16)
    ref = np_center_of_mass(arr)
    ours = label_centroids(arr)
    assert ref.keys() == ours.keys()
    assert all(np.array_equal(np.asarray(ref[k]), ours[k]) for k in ref)


def test_rounds_of_growth_equal_chessboard_distance():
    """split_endplates replaces the reference's r rounds of 26-connected dilation inside a box
    by chessboard distance <= r inside the same box: the same voxels for every r."""
    rng = np.random.default_rng(11)
    seed = rng.random((9, 10, 11)) > 0.97
    dist = ndimage.distance_transform_cdt(~seed, metric="chessboard")
    grown = seed.copy()
    for r in range(1, 8):
        grown = ndimage.binary_dilation(grown, structure=np.ones((3, 3, 3), bool))
        assert np.array_equal(grown, dist <= r)


# --- one behaviour per step -------------------------------------------------------------------


def test_articular_process_goes_to_dominant_owner():
    """A process 3:1 between vertebrae 3 and 4 goes wholly to 3 (3 * 0.5 > 1)."""
    sem = np.full((1, 1, 4), 45)
    inst = np.array([[[3, 3, 3, 4]]])
    assert assign_articular_processes(inst, sem).tolist() == [[[3, 3, 3, 3]]]


def test_articular_process_without_dominant_owner_is_left_alone():
    """2:1 is not dominant (2 * 0.5 = 1, not > 1): nothing changes."""
    sem = np.full((1, 1, 3), 46)
    inst = np.array([[[3, 3, 4]]])
    assert assign_articular_processes(inst, sem).tolist() == [[[3, 3, 4]]]


def test_articular_process_mostly_unlabelled_is_removed():
    """Unlabelled voxels vote too: when they dominate, the process loses its instance voxels."""
    sem = np.full((1, 1, 4), 47)
    inst = np.array([[[0, 0, 0, 5]]])
    assert assign_articular_processes(inst, sem).tolist() == [[[0, 0, 0, 0]]]


def test_missing_vertebra_voxels_are_grown_into_then_isolated_ones_deleted():
    """Instances grow two face steps inside the semantic vertebra; an island beyond reach
    with no instance around it is deleted from the *semantic* mask."""
    sem = np.array([[[49, 49, 49, 0, 0, 49, 100]]])
    inst = np.array([[[2, 0, 0, 0, 0, 0, 0]]])
    inst2, sem2 = assign_missing_components(inst, sem)
    assert inst2.tolist() == [[[2, 2, 2, 0, 0, 0, 0]]]
    assert sem2.tolist() == [[[49, 49, 49, 0, 0, 0, 100]]]


def test_first_label_grows_once_from_voxels_outside_the_vertebra():
    """Quirk kept: the mask is applied after each label, so the lowest id still grows one step
    from its voxels on a disc (then cleared) into the vertebra; id 3 on a disc does not."""
    sem = np.array([[[100, 49, 0, 49, 49, 49, 100]]])
    inst = np.array([[[2, 0, 0, 5, 0, 0, 3]]])
    inst2, _ = assign_missing_components(inst, sem)
    assert inst2.tolist() == [[[0, 2, 0, 5, 5, 5, 0]]]


def test_left_over_component_goes_to_most_frequent_neighbour():
    """A component beyond two growth steps takes the id most frequent in its 18-neighbourhood;
    at a tie the smaller id."""
    sem = np.zeros((1, 9, 3), np.uint8)
    sem[0, :, 1] = 49
    sem[0, 4, :] = 41
    inst = np.zeros(sem.shape, np.int64)
    inst[0, 0, 1], inst[0, 8, 1] = 7, 4  # both two steps short of row 4
    inst2, sem2 = assign_missing_components(inst, sem)
    assert (inst2[0, 4] == 4).all() and (sem2 == sem).all()


def test_split_top_vertebra_is_merged_in_pir():
    """Two stacked instances above every disc, the upper under half the lower's size and a
    wide contact: the upper takes the lower's id."""
    sem = np.zeros((8, 20, 8), np.uint8)
    sem[:, 0:3] = 49
    sem[:, 3:12] = 49
    sem[:, 14:16] = 100
    inst = np.zeros(sem.shape, np.int64)
    inst[:, 0:3], inst[:, 3:12] = 1, 2
    out = merge_split_top_vertebra(inst, sem, zoom=(1.0, 1.0, 1.0))
    assert set(np.unique(out)) == {0, 2}


def test_merge_check_uses_axis_one_of_the_scan_orientation():
    """Quirk kept: the reference sorts by axis 1 *of the scan*, without reorienting. In an
    A-S-R scan axis 1 runs upwards, so the same spine's "first" entry is the disc at the
    bottom and nothing is merged."""
    sem = np.zeros((8, 20, 8), np.uint8)
    sem[:, 0:3] = 49
    sem[:, 3:12] = 49
    sem[:, 14:16] = 100
    inst = np.zeros(sem.shape, np.int64)
    inst[:, 0:3], inst[:, 3:12] = 1, 2
    out = merge_split_top_vertebra(inst, sem, zoom=(1.0, 1.0, 1.0), scan_orientation="ASR")
    assert np.array_equal(out, inst)


def test_contact_threshold_is_twenty_faces_at_reference_zoom():
    """20 faces at 0.75 x 0.75 x 1.65 mm, fewer for coarser voxels, never below 1."""
    assert contact_threshold_voxels((0.75, 0.75, 1.65)) == 20
    assert contact_threshold_voxels((1.5, 1.5, 3.3)) == 5
    assert contact_threshold_voxels((20.0, 20.0, 20.0)) == 1


def test_posterior_fragment_goes_to_the_only_id_in_its_box():
    """A detached spinous piece of vertebra 3 whose box (grown by 1) holds only vertebra 4."""
    sem = np.zeros((6, 12, 6), np.uint8)
    inst = np.zeros(sem.shape, np.int64)
    sem[:, 0:5], inst[:, 0:5] = 49, 3
    sem[:, 6:11], inst[:, 6:11] = 42, 4
    inst[2:4, 8, 2:4] = 3  # a small piece of 3 inside 4's spinous process
    out = fix_posterior_fragments(inst, sem)
    assert (out[2:4, 8, 2:4] == 4).all() and (out[:, 0:5] == 3).all()


def test_posterior_fragment_with_body_voxels_stays():
    """A fragment holding any corpus voxel is not a posterior piece: unchanged."""
    sem = np.zeros((6, 12, 6), np.uint8)
    inst = np.zeros(sem.shape, np.int64)
    sem[:, 0:5], inst[:, 0:5] = 49, 3
    sem[:, 6:11], inst[:, 6:11] = 42, 4
    inst[2:4, 8, 2:4] = 3
    sem[2, 8, 2] = 49
    assert np.array_equal(fix_posterior_fragments(inst, sem), inst)


def test_posterior_fragment_touches_by_bounding_box_not_adjacency():
    """Quirk kept: an L-shaped arch piece of 3 goes to 4 although no voxel of 4 touches it, as
    4 lies inside the piece's bounding box grown by one."""
    sem = np.zeros((8, 16, 8), np.uint8)
    inst = np.zeros(sem.shape, np.int64)
    sem[1:7, 1:5, 1:7], inst[1:7, 1:5, 1:7] = 49, 3
    piece = ((3, 7, 3), (3, 7, 4), (4, 7, 3))
    for p in piece:
        sem[p], inst[p] = 41, 3
    sem[5, 8, 5], inst[5, 8, 5] = 42, 4  # in the box, two voxels from each piece voxel
    sem[1:7, 11:14, 1:7], inst[1:7, 11:14, 1:7] = 49, 4
    out = fix_posterior_fragments(inst, sem)
    assert [out[p] for p in piece] == [4, 4, 4] and out[5, 8, 5] == 4


def test_only_second_and_third_largest_fragments_are_checked():
    """Quirk kept: of vertebra 3's four pieces, the 2nd and 3rd largest (inside 4's spinous
    process) go to 4; the 4th, equally stray, stays 3."""
    sem = np.zeros((10, 20, 10), np.uint8)
    inst = np.zeros(sem.shape, np.int64)
    sem[1:9, 1:6, 1:9], inst[1:9, 1:6, 1:9] = 49, 3
    sem[1:9, 8:18, 1:9], inst[1:9, 8:18, 1:9] = 42, 4
    for (a, b, c), size in (((2, 10, 2), 3), ((2, 14, 5), 2), ((6, 12, 2), 1)):
        inst[a : a + size, b, c : c + size] = 3
    out = fix_posterior_fragments(inst, sem)
    assert (out[2, 10, 2], out[2, 14, 5], out[6, 12, 2]) == (4, 4, 3)


def test_numbering_runs_into_the_sacrum_id_past_24_vertebrae():
    """Quirk kept: every id is renumbered, so the 25th vertebra from the top gets 26 (S1)."""
    inst = np.zeros((1, 25, 1), np.int64)
    inst[0, :, 0] = np.arange(25, 0, -1)
    assert number_top_to_bottom(inst)[0, -1, 0] == 26


def test_numbering_runs_from_the_top_with_offset():
    """Ids by centre along axis 1 (inferior): top gets 1 + offset (C2 = 2 by default)."""
    inst = np.zeros((1, 9, 1), np.int64)
    inst[0, 0:3], inst[0, 3:6], inst[0, 6:9] = 9, 1, 5
    assert number_top_to_bottom(inst)[0, :, 0].tolist() == [2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert number_top_to_bottom(inst, labeling_offset=0)[0, 0, 0] == 1


def test_overrides_sacrum_metal_dens():
    """Sacrum -> 26, metal -> 80, dens -> 2, whatever instance was there."""
    sem = np.array([[[26, 80, 51, 49]]])
    inst = np.array([[[7, 7, 7, 7]]], np.uint16)
    assert apply_overrides(inst, sem).tolist() == [[[26, 80, 2, 7]]]


def test_disc_takes_the_vertebra_above_and_top_disc_the_sacrum():
    """Quirk kept: the sacrum has no body voxels, so its centre row counts as 0 (top of the
    image); a disc above every vertebra then lands on it (126), not on "top id - 1"."""
    sem = np.zeros((1, 14, 1), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    sem[0, 0], sem[0, 1:5], sem[0, 5], sem[0, 6:10], sem[0, 10:] = 100, 49, 100, 49, 26
    inst[0, 1:5], inst[0, 6:10], inst[0, 10:] = 2, 3, 26
    out, _ = attach_discs_endplates(inst, sem)
    assert out[0, 5, 0] == 102 and out[0, 0, 0] == 126
    no_sacrum, _ = attach_discs_endplates(inst[:, :10], sem[:, :10])
    assert no_sacrum[0, 0, 0] == 101


def test_both_endplates_of_a_disc_take_the_vertebra_above_then_split():
    """Quirk kept (the reference's own FIXME): the plate *below* a disc also gets 200 + the
    vertebra above the disc. The split still tells them apart: the upper vertebra reaches its
    plate as its own (53, inferior), the lower one reaches a plate of the vertebra handled just
    before it (52, superior)."""
    sem = np.zeros((1, 12, 1), np.uint8)
    sem[0, 0:4], sem[0, 4], sem[0, 5], sem[0, 6], sem[0, 7:11] = 49, 62, 100, 62, 49
    inst = np.zeros(sem.shape, np.uint16)
    inst[0, 0:4], inst[0, 7:11] = 2, 3
    out, sem2 = attach_discs_endplates(inst, sem)
    assert out[0, 4:7, 0].tolist() == [202, 102, 202]
    assert sem2[0, 4:7, 0].tolist() == [53, 100, 52]


def test_endplate_reached_first_by_a_stranger_is_dropped():
    """Quirk kept: a plate voxel first reached by an unrelated vertebra sums to a value that is
    neither 52 nor 53 and leaves the semantic mask (0)."""
    sem = np.zeros((1, 9, 1), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    sem[0, 4] = 62
    inst[0, 4] = 207  # the plate belongs to vertebra 7 ...
    inst[0, 3], inst[0, 8] = 2, 7  # ... but vertebra 2 is next to it
    assert split_endplates(inst, sem)[0, 4, 0] == 0


def test_discs_without_any_vertebra_raise():
    """The reference fails here (min of no vertebra centres); so do we, saying why."""
    sem = np.full((1, 2, 1), 100, np.uint8)
    with pytest.raises(InputError, match="no vertebra"):
        attach_discs_endplates(np.zeros(sem.shape, np.uint16), sem)


def test_corpus_border_50_is_read_as_49_and_outside_stays_zero():
    """50 -> 49 before anything; instance voxels outside the semantic mask are dropped."""
    sem = np.zeros((5, 8, 5), np.uint8)
    sem[1:4, 1:7, 1:4] = 50
    inst = np.ones(sem.shape, np.uint16)
    sem2, inst2 = postprocess_like_reference(sem, inst, zoom=(1.0, 1.0, 1.0))
    assert set(np.unique(sem2)) == {0, 49}
    assert (inst2[sem == 0] == 0).all() and (inst2[sem != 0] == 2).all()


def test_shape_mismatch_is_refused():
    """Semantic and instance must share one 3D grid."""
    with pytest.raises(ValueError, match="same 3D grid"):
        postprocess_like_reference(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), zoom=(1, 1, 1))
