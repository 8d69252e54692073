"""The real-crop evaluation behind the model cards (issue 17, item 3): the tptbox wheel's crops
are found by kind, and the instance phase on a crop's true semantic mask finds its vertebrae."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.metrics.panoptic import match_instances
from spineps_dask.models.folders import demo_model
from spineps_dask.models.instance import InstanceModel
from spineps_dask.training.demo_eval import (
    evaluate_semantic,
    instance_phase_on_real_masks,
    real_crop_files,
)

pytest.importorskip("TPTBox")


def test_real_crop_files_by_kind():
    """The MRI crop has both masks and its T2w image; the CT crop masks only (its image is CT,
    never fed to the MRI models)."""
    mri, ct = real_crop_files("sample_mri"), real_crop_files("sample_ct")
    assert set(mri) == {"subreg", "vert", "image"} and set(ct) == {"subreg", "vert"}
    assert "seg-subreg" in mri["subreg"].name and "seg-vert" in ct["vert"].name
    assert mri["image"].name.endswith("_T2w.nii.gz")


def test_instance_phase_on_real_masks_finds_the_crops_vertebrae():
    """The shipped instance model on the CT crop's true semantic mask: each of its three true
    vertebrae is matched one to one by a predicted vertebra with Dice > 0.9 (the card: 0.99)."""
    model = InstanceModel.from_folder(demo_model("instance"), device="cpu")
    res, sem, vert = instance_phase_on_real_masks("sample_ct", model)
    assert sem.data.dtype == np.uint8 and vert.data.dtype == np.uint16
    pred, true = (np.asarray(v) for v in (res.instance.data, vert.data))
    pred, true = (np.where(v < 40, v, 0) for v in (pred, true))  # vertebrae only
    matches = match_instances(pred, true)
    assert sorted(m.ref_label for m in matches) == sorted(np.unique(true[true > 0]).tolist())
    assert len(matches) == 3 and all(m.dice > 0.9 for m in matches), matches


def test_semantic_scores_can_be_taken_on_phantoms_with_drawn_sacs(monkeypatch):
    """``drawn_sac=1`` (`benchmarks/heldout_anatomy.py`, session 25) scores the held-out seeds
    with the random looks' sac and cord place in the asked contrast; 0 keeps the cards' own
    phantoms."""
    import spineps_dask.phantom
    from spineps_dask.models.semantic import SemanticModel

    class Built(Exception):
        pass

    def build(spec):
        raise Built(spec)

    monkeypatch.setattr(SemanticModel, "from_folder", classmethod(lambda cls, *a, **k: None))
    monkeypatch.setattr(spineps_dask.phantom, "make_phantom", build)
    for drawn in (0.0, 1.0):
        with pytest.raises(Built) as got:
            evaluate_semantic("unused", [100003], appearance="t1w", drawn_sac=drawn)
        want = spineps_dask.phantom.sample_spec(100003, appearance="t1w", drawn_sac=drawn)
        assert got.value.args[0] == want
    assert (
        got.value.args[0].sac_inset
        == spineps_dask.phantom.sample_spec(100003, appearance="random").sac_inset
    )
