"""Phantom anatomy: label scheme, instance/semantic consistency, anatomical facts, geometry."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.geometry import reorient
from spineps_dask.labels import (
    ENDPLATE_OFFSET,
    IVD_OFFSET,
    SEMANTIC_NAMES,
    VERTEBRA_IDS,
    VERTEBRA_SEMANTIC,
    Semantic,
)
from spineps_dask.phantom import Phantom, make_phantom, sample_spec

from .conftest import COARSE_PIR, PIR


def _world(ph: Phantom, ijk) -> np.ndarray:
    return ph.instance.affine[:3, :3] @ np.asarray(ijk, float) + ph.instance.affine[:3, 3]


def _si(ph: Phantom, label: int) -> float:
    """Superior-inferior world coordinate (mm, RAS z) of an instance's centroid."""
    return float(_world(ph, ph.centroids[label])[2])


def _check_labels(ph: Phantom) -> None:
    sem, inst = ph.semantic.data, ph.instance.data
    assert sem.dtype == np.uint8 and inst.dtype == np.uint16 and ph.image.data.dtype == np.float32
    assert set(np.unique(sem).tolist()) <= {0, *SEMANTIC_NAMES} - {Semantic.CORPUS_BORDER}
    vert_ids = set(VERTEBRA_IDS.values()) - {26}
    bone = np.isin(sem, VERTEBRA_SEMANTIC)
    assert set(np.unique(inst[bone]).tolist()) <= vert_ids & set(ph.spec.vertebrae)
    assert set(np.unique(inst[sem == Semantic.SACRUM]).tolist()) <= {26}
    discs = set(np.unique(inst[sem == Semantic.DISC]).tolist())
    assert discs and all(d - IVD_OFFSET in vert_ids for d in discs)
    plates = set(np.unique(inst[sem == Semantic.ENDPLATE]).tolist())
    assert plates and all(p - ENDPLATE_OFFSET in vert_ids for p in plates)
    soft = np.isin(sem, (0, Semantic.CANAL, Semantic.CORD))
    assert not inst[soft].any(), "background, canal and cord carry no instance id"
    # The disc 100+X lies between the centres of X (the vertebra above) and the next one.
    seq = ph.spec.vertebrae
    for d in discs:
        x = d - IVD_OFFSET
        below = seq[seq.index(x) + 1]
        upper, lower = (ph.truth[v]["centre_world_mm"][2] for v in (x, below))
        assert lower < _si(ph, d) < upper


def test_cervical_labels_consistent(cervical: Phantom) -> None:
    """Only scheme labels; vertebra voxels have vertebra ids, discs 100+X, endplates 200+X."""
    _check_labels(cervical)
    assert {Semantic.CORD, Semantic.CANAL, *range(41, 50)} <= set(np.unique(cervical.semantic.data))


def test_lumbar_labels_consistent(lumbar: Phantom) -> None:
    """Same rules for a lumbar field of view with the sacrum (26)."""
    _check_labels(lumbar)
    assert Semantic.SACRUM in np.unique(lumbar.semantic.data)


def test_endplates_are_named_after_the_disc_they_face(lumbar: Phantom) -> None:
    """Both endplates around disc 100+X are 200+X (the reference masks' convention, seen in
    the tptbox sample): each one borders that disc and the body of X or of the next vertebra.
    """
    from scipy import ndimage

    sem, inst = lumbar.semantic.data, lumbar.instance.data
    seq = lumbar.spec.vertebrae
    for label in np.unique(inst[sem == Semantic.ENDPLATE]):
        x = int(label) - ENDPLATE_OFFSET
        below = seq[seq.index(x) + 1]
        comps, n = ndimage.label(inst == label)
        for k in range(1, n + 1):
            plate = ndimage.binary_dilation(comps == k)
            bodies = set(np.unique(inst[plate & (sem == Semantic.CORPUS)]).tolist())
            assert bodies & {x, below}, (label, bodies)
            assert not bodies - {x, below}, (label, bodies)
        assert (ndimage.binary_dilation(inst == label) & (inst == IVD_OFFSET + x)).any()


def test_c1_has_no_body_and_no_disc_to_c2(cervical: Phantom) -> None:
    """C1 is a ring without body; nothing is labelled as a C1-C2 disc or a C2 top endplate."""
    sem, inst = cervical.semantic.data, cervical.instance.data
    assert 1 in cervical.centroids
    assert not ((inst == 1) & (sem == Semantic.CORPUS)).any()
    assert (inst == 1).sum() > 50
    assert (
        IVD_OFFSET + 1 not in cervical.centroids and ENDPLATE_OFFSET + 1 not in cervical.centroids
    )
    assert IVD_OFFSET + 2 in cervical.centroids  # C2-C3 disc
    plate = np.argwhere(inst == ENDPLATE_OFFSET + 2)
    top = max(_world(cervical, p)[2] for p in plate)
    assert top < _si(cervical, 2), "C2 has an endplate only below (no disc above it)"
    assert _si(cervical, 1) > _si(cervical, 2) > _si(cervical, 3)


def test_c1_missing_from_view() -> None:
    """With c1_in_view=False the field of view starts below C1: C2 is the top vertebra."""
    ph = make_phantom(13, region="cervical", c1_in_view=False, orientation=PIR, spacing=COARSE_PIR)
    assert 1 not in ph.centroids and 2 in ph.centroids


def test_sacrum_below_last_lumbar_with_disc_between(lumbar: Phantom) -> None:
    """The sacrum sits below L5 and the L5-S1 disc (id 124) lies between them."""
    l5 = VERTEBRA_IDS["L5"]
    assert _si(lumbar, 26) < _si(lumbar, IVD_OFFSET + l5) < _si(lumbar, l5)


def test_same_seed_identical_different_seed_differs(cervical: Phantom) -> None:
    """make_phantom is a pure function of its spec."""
    again = make_phantom(cervical.spec)
    for a, b in zip(
        (cervical.image, cervical.semantic, cervical.instance),
        (again.image, again.semantic, again.instance),
        strict=True,
    ):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.affine, b.affine)
    other = make_phantom(
        14, region="cervical", c1_in_view=True, orientation=PIR, spacing=COARSE_PIR
    )
    assert (
        other.semantic.shape != cervical.semantic.shape
        or (other.semantic.data != cervical.semantic.data).any()
    )


def test_orientation_changes_storage_not_geometry() -> None:
    """The same spec stored RAS and PIR: equal after reorienting; centroids agree in mm."""
    spec = sample_spec(15, region="cervical", orientation=("R", "A", "S"), spacing=(4.0, 1.2, 1.2))
    ras = make_phantom(spec)
    pir = make_phantom(spec, orientation=PIR)
    assert pir.image.orientation == PIR and pir.image.spacing == pytest.approx((1.2, 1.2, 4.0))
    for a, b in (
        (ras.image, pir.image),
        (ras.semantic, pir.semantic),
        (ras.instance, pir.instance),
    ):
        back = reorient(b, ("R", "A", "S"))
        np.testing.assert_array_equal(back.data, a.data)
        np.testing.assert_allclose(back.affine, a.affine, atol=1e-6)
    for label in (2, 4, IVD_OFFSET + 4):
        gap = np.abs(_world(ras, ras.centroids[label]) - _world(pir, pir.centroids[label]))
        assert (gap <= np.array(spec.world_spacing)).all()


@pytest.mark.parametrize(
    ("variant", "region", "vid", "between"),
    [("has_t13", "thoracic", VERTEBRA_IDS["T13"], (19, 20)), ("has_l6", "lumbar", 25, (24, 26))],
)
def test_variants_appear_in_instance_ids(variant: str, region: str, vid: int, between) -> None:
    """Forced T13 (28) / L6 (25) are present, in order between their neighbours."""
    ph = make_phantom(
        16, region=region, orientation=PIR, spacing=(1.3, 1.3, 4.5), **{variant: True}
    )
    assert vid in ph.centroids and IVD_OFFSET + vid in ph.centroids
    seq = ph.spec.vertebrae
    assert seq[seq.index(vid) - 1] == between[0] and seq[seq.index(vid) + 1] == between[1]
    si = {v: ph.truth[v]["centre_world_mm"][2] for v in (*between, vid)}
    assert si[between[0]] > si[vid] > si[between[1]]


def _run_length(ph: Phantom, centre, axis, labels) -> float:
    """Length (mm) of the line ``centre + t * axis`` (|t| < 30 mm) inside ``labels``."""
    inv = np.linalg.inv(ph.instance.affine)
    steps = np.arange(-30.0, 30.0, 0.25)
    pts = np.asarray(centre)[:, None] + np.asarray(axis)[:, None] * steps
    ijk = (inv[:3, :3] @ pts + inv[:3, 3:4]).round().astype(int)
    return float(np.isin(ph.instance.data[tuple(ijk)], labels).sum() * 0.25)


def test_disc_height_truth_matches_mask(lumbar: Phantom) -> None:
    """Mid-disc height measured on the mask agrees with truth; lordotic discs open anteriorly."""
    l3, l4 = VERTEBRA_IDS["L3"], VERTEBRA_IDS["L4"]
    up, low = lumbar.truth[l3], lumbar.truth[l4]
    axis = np.asarray(up["frame_world"])[:, 2] + np.asarray(low["frame_world"])[:, 2]
    axis /= np.linalg.norm(axis)
    centre = 0.5 * (np.asarray(up["centre_world_mm"]) + np.asarray(low["centre_world_mm"]))
    measured = _run_length(lumbar, centre, axis, (IVD_OFFSET + l3,))
    assert measured == pytest.approx(up["disc_height_mm"], abs=1.5 * 1.2)
    assert up["disc_height_anterior_mm"] > up["disc_height_mm"] > up["disc_height_posterior_mm"]


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_random_specs_keep_label_rules(seed: int) -> None:
    """Fully random subjects (any region, variants, curvature) obey the same label rules."""
    from spineps_dask.phantom import replace_spec
    from spineps_dask.phantom.spec import from_world_order

    spec = sample_spec(seed)
    spec = replace_spec(spec, spacing=from_world_order((4.5, 1.6, 1.6), spec.orientation))
    _check_labels(make_phantom(spec))


def test_truth_matches_label_geometry(lumbar: Phantom) -> None:
    """Body height along the vertebra's axis and body volume agree with the stored truth."""
    l3 = lumbar.truth[VERTEBRA_IDS["L3"]]
    up = np.asarray(l3["frame_world"])[:, 2]
    labels = (VERTEBRA_IDS["L3"], ENDPLATE_OFFSET + VERTEBRA_IDS["L3"])
    height = _run_length(lumbar, l3["centre_world_mm"], up, labels)
    assert height == pytest.approx(l3["body_height_middle_mm"], abs=1.5 * 1.2)
    expected = (
        0.89 * np.pi / 4 * l3["body_depth_mm"] * l3["body_width_mm"] * l3["body_height_middle_mm"]
    )
    assert l3["body_volume_mm3"] == pytest.approx(expected, rel=0.12)
    assert 20 < l3["body_height_middle_mm"] < 34 and 8 < l3["disc_height_mm"] < 14
    assert l3["canal_area_mm2"] > 150 and lumbar.truth[5]["cord_area_mm2"] > 40


def test_forced_wedge_fracture_in_truth_and_mask() -> None:
    """A forced L1 fracture: truth anterior/posterior = ratio; the mask is shorter in front."""
    ph = make_phantom(
        12,
        region="lumbar",
        orientation=("R", "A", "S"),
        spacing=(1.2, 1.2, 1.2),
        scoliosis_deg=0.0,
        fracture_vid=VERTEBRA_IDS["L1"],
        fracture_ratio=0.6,
    )
    t = ph.truth[VERTEBRA_IDS["L1"]]
    assert t["body_height_anterior_mm"] / t["body_height_posterior_mm"] == pytest.approx(0.6)
    frame = np.asarray(t["frame_world"])
    labels = (VERTEBRA_IDS["L1"], ENDPLATE_OFFSET + VERTEBRA_IDS["L1"])
    heights = {}
    for name, a in (("front", 0.4), ("back", -0.35)):
        centre = np.asarray(t["centre_world_mm"]) + frame[:, 1] * a * t["body_depth_mm"]
        heights[name] = _run_length(ph, centre, frame[:, 2], labels)
    assert heights["front"] < 0.8 * heights["back"]


@pytest.mark.parametrize("name", ["L2", "L3", "L4"])
def test_canal_area_truth_matches_mask(lumbar: Phantom, name: str) -> None:
    """The canal cross-section on the mask (perpendicular to the vertebra's axis, through its
    centre) has the truth's area within 8 %: the canal is painted before the bone around it."""
    t = lumbar.truth[VERTEBRA_IDS[name]]
    frame, centre = np.asarray(t["frame_world"]), np.asarray(t["centre_world_mm"])
    step = 0.25
    grid = np.arange(-40.0, 40.0, step)
    ll, aa = np.meshgrid(grid, grid - 40.0, indexing="ij")  # the canal lies behind the body
    pts = centre[:, None] + frame[:, 0:1] * ll.ravel() + frame[:, 1:2] * aa.ravel()
    inv = np.linalg.inv(lumbar.semantic.affine)
    ijk = (inv[:3, :3] @ pts + inv[:3, 3:4]).round().astype(int)
    labels = lumbar.semantic.data[tuple(ijk)]
    area = np.isin(labels, (Semantic.CANAL, Semantic.CORD)).sum() * step**2
    assert area == pytest.approx(t["canal_area_mm2"], rel=0.08)
