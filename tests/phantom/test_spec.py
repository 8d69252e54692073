"""Spec sampling: deterministic per seed, overrides respected, acquisition ranges from the issue."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.phantom import replace_spec, sample_spec
from spineps_dask.phantom.spec import RANDOM_LOOK_FIELDS, REGIONS


def test_same_seed_same_spec_and_seeds_differ() -> None:
    """A seed is a complete recipe; different seeds give different subjects."""
    assert sample_spec(3) == sample_spec(3)
    assert len({sample_spec(s) for s in range(10)}) == 10


@pytest.mark.parametrize("seed", range(40))
def test_spacing_within_issue_ranges(seed: int) -> None:
    """Sagittal: 0.5-1.0 mm in plane, 2.5-4.5 mm slices along left-right; or isotropic ~1 mm."""
    spec = sample_spec(seed)
    lr, ap, si = spec.world_spacing
    if spec.isotropic:
        assert 0.9 <= lr == ap == si <= 1.3
    else:
        assert 2.5 <= lr <= 4.5
        assert 0.5 <= ap == si <= 1.0
    assert spec.region in REGIONS
    assert 0.0 <= spec.scoliosis_deg <= 20.0


def test_regions_and_variants_all_occur() -> None:
    """Over many seeds every region and both rare variants are drawn (variants stay rare)."""
    specs = [sample_spec(s) for s in range(300)]
    assert {s.region for s in specs} == set(REGIONS)
    t13 = np.mean([s.has_t13 for s in specs])
    l6 = np.mean([s.has_l6 for s in specs])
    assert 0.02 < t13 < 0.2 and 0.02 < l6 < 0.2
    assert any(not s.c1_in_view for s in specs if s.region == "cervical")


def test_orientation_override_keeps_thick_axis_left_right() -> None:
    """Changing only the orientation permutes the spacing so slices stay sagittal."""
    spec = sample_spec(4, orientation=("R", "A", "S"), spacing=(3.0, 0.8, 0.8))
    moved = replace_spec(spec, orientation=("P", "I", "R"))
    assert moved.spacing == (0.8, 0.8, 3.0)
    assert moved.world_spacing == spec.world_spacing


def test_bad_overrides_are_refused_with_the_fix() -> None:
    """Unknown fields, regions and orientations raise InputError naming the value."""
    with pytest.raises(InputError, match="unknown phantom spec fields"):
        sample_spec(0, colour="red")
    with pytest.raises(InputError, match="'neck' is not one of"):
        sample_spec(0, region="neck")
    with pytest.raises(InputError, match="axis codes"):
        sample_spec(0, orientation=("P", "A", "R"))


def test_override_leaves_other_draws_unchanged() -> None:
    """Fixing the region does not reshuffle the seed's other random choices."""
    a, b = sample_spec(9, region="lumbar"), sample_spec(9, region="cervical")
    for name in ("orientation", "spacing", "snr", "lordosis_lumbar_deg", "size_scale", "has_l6"):
        assert getattr(a, name) == getattr(b, name)


def test_random_looks_draw_the_sac_and_nothing_else() -> None:
    """A random-look spec is the seed's T2w spec but for its cord place (from the back of the
    sac to a little anterior) and its sac inset (most leave epidural space, up to 0.6 canal
    radii behind, 0.2 in front); fixed contrasts keep the middle (0.15, 0) and a full sac;
    every look keeps the textbook conus."""
    textbook = {"conus_end": 0.0, "conus_taper_mm": 30.0, "cord_flatten": 1.0}
    places, insets = [], []
    for seed in range(40):
        t2, rnd = sample_spec(seed), sample_spec(seed, appearance="random")
        assert t2.cord_offset == sample_spec(seed, appearance="t1w").cord_offset == (0.15, 0.0)
        assert t2.sac_inset == sample_spec(seed, appearance="t1w").sac_inset == (0.0, 0.0)
        for spec in (t2, rnd, sample_spec(seed, appearance="t1w")):
            assert all(getattr(spec, k) == v for k, v in textbook.items())
        back = replace_spec(
            rnd, appearance="t2w", **{k: getattr(t2, k) for k in RANDOM_LOOK_FIELDS}
        )
        assert back == t2
        assert -0.6 <= rnd.cord_offset[0] <= 0.3 and abs(rnd.cord_offset[1]) <= 0.3
        assert 0 <= rnd.sac_inset[0] <= 0.6 and 0 <= rnd.sac_inset[1] <= 0.2
        places.append(rnd.cord_offset)
        insets.append(rnd.sac_inset)
    assert len(set(places)) == 40 and min(p[0] for p in places) < -0.3
    full = sum(i == (0.0, 0.0) for i in insets)
    assert 2 <= full <= 16 and max(i[0] for i in insets) > 0.4
    assert sample_spec(3, appearance="random", cord_offset=(0.0, 0.0)).cord_offset == (0.0, 0.0)
    with pytest.raises(InputError, match="cord_offset"):
        sample_spec(0, cord_offset=(1.5, 0.0))
    with pytest.raises(InputError, match="sac_inset"):
        sample_spec(0, sac_inset=(0.8, 0.4))
    with pytest.raises(InputError, match="sac_inset"):
        sample_spec(0, sac_inset=(-0.1, 0.0))


def _sac(spec):
    """A spec's sac and cord place, as overrides."""
    return {k: getattr(spec, k) for k in RANDOM_LOOK_FIELDS}


def test_textbook_sac_gives_a_share_of_random_looks_the_t2w_sac_and_changes_nothing_else() -> None:
    """Issue 17 (session 24): ``textbook_sac`` is the chance that a random look keeps the T2w
    phantoms' full sac and cord place; it is drawn after them, so 0 gives every earlier spec
    and any share leaves the other random looks and every other field as they were."""
    shares = []
    for seed in range(500, 560):
        old = sample_spec(seed, appearance="random")
        assert sample_spec(seed, appearance="random", textbook_sac=0.0) == old
        t2 = sample_spec(seed)
        assert sample_spec(seed, textbook_sac=1.0) == t2  # only random looks draw the sac
        some = sample_spec(seed, appearance="random", textbook_sac=0.4)
        plain = replace_spec(old, **_sac(t2))
        assert some in (old, plain)
        assert sample_spec(seed, appearance="random", textbook_sac=1.0) == plain
        shares.append(some == plain and some != old)
    assert 14 <= sum(shares) <= 34  # 0.4 of 60 is 24
    with pytest.raises(InputError, match="textbook_sac"):
        sample_spec(0, appearance="random", textbook_sac=1.5)


def test_drawn_sac_gives_a_share_of_t2w_and_t1w_specs_the_random_look_sac_and_nothing_else():
    """Issue 17 (session 25): ``drawn_sac`` is the chance that a T2w or T1w spec draws its sac
    and cord place as a random look of the same seed does; 0 gives every earlier spec, and the
    other fields stay as they were (the held-out phantoms with drawn sacs differ from the
    cards' only there)."""
    shares = []
    for seed in range(0, 60):
        look = sample_spec(seed, appearance="random")
        for appearance in ("t2w", "t1w"):
            old = sample_spec(seed, appearance=appearance)
            assert sample_spec(seed, appearance=appearance, drawn_sac=0.0) == old
            drawn = replace_spec(old, **_sac(look))
            assert drawn != old  # the cord place is always drawn
            assert sample_spec(seed, appearance=appearance, drawn_sac=1.0) == drawn
        some, old_t2w = sample_spec(seed, drawn_sac=0.5), sample_spec(seed)
        assert some in (old_t2w, replace_spec(old_t2w, **_sac(look)))
        shares.append(some != old_t2w)
    assert 20 <= sum(shares) <= 40  # 0.5 of 60 is 30
    assert sample_spec(3, appearance="random", drawn_sac=1.0) == sample_spec(3, appearance="random")
    with pytest.raises(InputError, match="drawn_sac"):
        sample_spec(0, drawn_sac=-0.2)


def test_a_conus_is_set_not_drawn_and_impossible_ones_are_refused() -> None:
    """The conus fields are overrides (no look draws them, session 20), kept as given; an end
    outside T9-L5 (anchor positions 15-23), a flatter cord than 0.2 or no taper is refused
    with the field named."""
    spec = sample_spec(3, appearance="random", conus_end=19.0, cord_flatten=0.4)
    assert (spec.conus_end, spec.conus_taper_mm, spec.cord_flatten) == (19.0, 30.0, 0.4)
    with pytest.raises(InputError, match="conus_end"):
        sample_spec(0, conus_end=5.0)
    with pytest.raises(InputError, match="cord_flatten"):
        sample_spec(0, cord_flatten=0.1)
    with pytest.raises(InputError, match="conus_taper_mm"):
        sample_spec(0, conus_taper_mm=0.0)


def test_a_filum_needs_a_set_conus_and_a_positive_size() -> None:
    """A filum hangs below a set conus: without one, or with no length or radius, it is
    refused with the field named; the default has none."""
    assert sample_spec(3).filum_mm == 0.0
    spec = sample_spec(3, conus_end=19.0, filum_mm=30.0)
    assert (spec.filum_mm, spec.filum_radius_mm) == (30.0, 1.0)
    for bad in ({"filum_mm": 30.0}, {"conus_end": 19.0, "filum_mm": -5.0}):
        with pytest.raises(InputError, match="filum_mm"):
            sample_spec(0, **bad)
    with pytest.raises(InputError, match="filum_radius_mm"):
        sample_spec(0, conus_end=19.0, filum_mm=30.0, filum_radius_mm=0.0)
