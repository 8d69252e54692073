"""Demo training data: the field-of-view cut of issue 17 and the cache of prepared cases."""

import numpy as np
import pytest

import spineps_dask.phantom
from spineps_dask.phantom import replace_spec
from spineps_dask.training.demo_data import case_path, field_of_view, prepare_case


def test_field_of_view_keeps_one_box_at_least_min_share_long_on_each_axis():
    """The kept voxels are one axis-aligned box (a scan's field of view), each side at least
    ``min_share`` of the patch, placed anywhere in it: the whole patch survives now and then,
    and edges land on both ends of every axis."""
    rng = np.random.default_rng(0)
    shape = (48, 96, 32)
    whole, low_cut, high_cut = 0, np.zeros(3, int), np.zeros(3, int)
    for _ in range(300):
        keep = field_of_view(shape, rng, min_share=0.35)
        idx = np.nonzero(keep)
        lo = np.array([i.min() for i in idx])
        hi = np.array([i.max() + 1 for i in idx])
        box = np.zeros(shape, bool)
        box[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
        assert (box == keep).all()
        assert ((hi - lo) >= np.round(0.35 * np.array(shape)) - 1).all()
        whole += keep.all()
        low_cut += lo > 0
        high_cut += hi < np.array(shape)
    assert 0 < whole < 100  # (1 - axis_p)^3 = 1/8 of patches keep everything
    assert (low_cut > 20).all() and (high_cut > 20).all()


def test_field_of_view_without_cuts_keeps_everything():
    """``axis_p=0`` leaves the patch whole (the sampler's off switch)."""
    keep = field_of_view((8, 9, 10), np.random.default_rng(1), axis_p=0.0)
    assert keep.shape == (8, 9, 10) and keep.all()


def test_cached_case_is_named_by_its_phantom_spec(tmp_path, monkeypatch):
    """A cached case is reused for the same seed and look, but not once the seed's spec has
    changed (here its sac inset): the stale file is not read for the new phantom."""
    first = case_path(tmp_path, 503, "random")
    assert first == case_path(tmp_path, 503, "random") and first.parent == tmp_path
    assert first != case_path(tmp_path, 503, "t2w")
    # `--textbook-sac`: a random look given the T2w sac is another phantom, cached apart
    assert case_path(tmp_path, 503, "random", 1.0) != first
    assert case_path(tmp_path, 503, "random", 0.0) == first
    # `--t2w-drawn-sac`: a T2w phantom given a drawn sac is another phantom too
    t2w = case_path(tmp_path, 3, "t2w")
    assert case_path(tmp_path, 3, "t2w", 0.0, 1.0) != t2w
    assert case_path(tmp_path, 3, "t2w", 0.0, 0.0) == t2w
    drawn = spineps_dask.phantom.sample_spec
    monkeypatch.setattr(
        spineps_dask.phantom,
        "sample_spec",
        lambda seed, **kw: replace_spec(drawn(seed, **kw), sac_inset=(0.1, 0.1)),
    )
    assert case_path(tmp_path, 503, "random") != first


def test_sac_shares_reach_the_phantom_a_case_is_made_from(monkeypatch):
    """``--textbook-sac`` and ``--t2w-drawn-sac`` change the phantom itself, not only its cache
    name: `prepare_case` builds the random look from the spec that keeps the T2w sac and cord
    place, and the T2w phantom from the spec that draws them."""

    class Built(Exception):
        pass

    def build(spec, **overrides):
        raise Built(spec)

    monkeypatch.setattr(spineps_dask.phantom, "make_phantom", build)
    with pytest.raises(Built) as got:
        prepare_case(
            503, {}, semantic_grid=((), ()), instance_spacing=(), appearance="random",
            textbook_sac=1.0,
        )  # fmt: skip
    spec = got.value.args[0]
    assert spec == spineps_dask.phantom.sample_spec(503, appearance="random", textbook_sac=1.0)
    assert (spec.cord_offset, spec.sac_inset) == ((0.15, 0.0), (0.0, 0.0))
    with pytest.raises(Built) as got:
        prepare_case(3, {}, semantic_grid=((), ()), instance_spacing=(), drawn_sac=1.0)
    spec = got.value.args[0]
    assert spec == spineps_dask.phantom.sample_spec(3, drawn_sac=1.0)
    assert spec != spineps_dask.phantom.sample_spec(3)


def test_cases_prepared_in_parallel_are_the_serial_ones(tmp_path):
    """``workers=2`` prepares missing cases in two processes and caches exactly what one
    process would (a case depends on its seed alone), in the order of the seeds asked for."""
    from spineps_dask.models import nnunet_folder as nf
    from spineps_dask.training.demo import (
        INSTANCE_SPACING,
        SEMANTIC_ORIENTATION,
        SPACING,
        DemoTrainConfig,
        semantic_spec,
    )
    from spineps_dask.training.demo_data import load_cases

    plans = nf.make_plans(semantic_spec(DemoTrainConfig()))
    grids = {
        "semantic_grid": (SEMANTIC_ORIENTATION, SPACING[::-1]),
        "instance_spacing": INSTANCE_SPACING,
    }
    seeds = [4, 10]  # small cervical views
    serial = load_cases(seeds, tmp_path / "one", plans, **grids)
    parallel = load_cases(seeds, tmp_path / "two", plans, **grids, workers=2)
    assert len(list((tmp_path / "two").glob("*.npz"))) == 2
    for a, b in zip(serial, parallel, strict=True):
        for name in ("data", "seg", "semantic", "instance"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_real_crop_reaches_the_model_grid_with_its_labels_on_the_image():
    """`case_from_volumes` (what `prepare_case` does to a phantom) on the tptbox real crop:
    image and classes share the model grid (R-I-P at 3 x 1.5 x 1.5 mm: the crop's 67 R planes
    of 1.5 mm become 34), every true structure keeps its class, and the classes lie on the
    image: the canal's CSF is the brightest structure of this T2w scan, well above the bodies
    (a label grid flipped or shifted against the image would not keep that)."""
    import json

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.io.nifti import load_volume
    from spineps_dask.training.demo import INSTANCE_SPACING, SEMANTIC_ORIENTATION, SPACING
    from spineps_dask.training.demo_data import SEMANTIC_CLASSES, case_from_volumes
    from spineps_dask.training.demo_eval import real_crop_files

    files = real_crop_files("sample_mri")
    image, sem, vert = (load_volume(files[k]) for k in ("image", "subreg", "vert"))
    plans = json.loads((DEMO_MODELS / "semantic" / "plans.json").read_text())
    grid = (SEMANTIC_ORIENTATION, SPACING[::-1])
    case = case_from_volumes(
        image, sem, vert, plans, semantic_grid=grid, instance_spacing=INSTANCE_SPACING
    )
    assert case.data.shape == case.seg.shape == (1, 68, 52, 34)  # P, I, R (nnU-Net order)
    present = {SEMANTIC_CLASSES[c - 1] for c in np.unique(case.seg) if c > 0}
    assert present == set(np.unique(np.asarray(sem.data)).tolist()) - {0}
    mean = {
        lab: float(case.data[0][case.seg[0] == SEMANTIC_CLASSES.index(lab) + 1].mean())
        for lab in (49, 60, 61, 100)
    }
    assert max(mean, key=mean.get) == 61
    assert mean[61] > mean[49] + 1.0  # z-scored image: over one sd apart
