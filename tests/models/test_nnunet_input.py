"""The semantic network's input, built as `spineps` 2.1.3 builds it (issue 22).

The reference (TPTBox ``inference_api.run_inference`` + its vendored nnU-Net preprocessor) casts
the model-grid image to float16 and normalises into that float16 array. These tests run TPTBox's
own preprocessor (a test extra) on the same array and ask for the same tensor, bit for bit, and
check the whole chain from a scan file: prepare, reorient, spline, float16, crop, z-score.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from spineps_dask.config import DEMO_MODELS
from spineps_dask.geometry import reference_zoom
from spineps_dask.models.nnunet_input import reference_network_input

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("TPTBox") is None, reason="tptbox (test extra) not installed"
)
SEMANTIC = DEMO_MODELS / "semantic"


def _managers(tptbox: bool):
    plans = json.loads((SEMANTIC / "plans.json").read_text())
    if tptbox:
        from TPTBox.segmentation.nnUnet_utils.plans_handler import PlansManager
    else:
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    pm = PlansManager(plans)
    return pm, pm.get_configuration("3d_fullres")


def _tptbox_input(x: np.ndarray, spacing) -> tuple[np.ndarray, dict]:
    from TPTBox.segmentation.nnUnet_utils.default_preprocessor import DefaultPreprocessor

    pm, cm = _managers(tptbox=True)
    props = {"spacing": list(spacing)}
    dataset = json.loads((SEMANTIC / "dataset.json").read_text())
    data, _ = DefaultPreprocessor(verbose=False).run_case_npy(
        x.astype(np.float16), None, props, pm, cm, dataset
    )
    return data, props


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_input_equals_tptbox_preprocessor(dtype) -> None:
    """Same float16 tensor, crop box and shapes as TPTBox's preprocessor, for an image with a
    zero border (the crop matters) and values that round differently in float16."""
    rng = np.random.default_rng(0)
    x = np.zeros((1, 40, 70, 30), dtype)
    x[0, 3:37, 5:66, 2:29] = (rng.random((34, 61, 27)) * 1500).astype(dtype)
    pm, cm = _managers(tptbox=False)
    spacing = tuple(cm.spacing)  # at the plans spacing: nnU-Net does not resample
    ours, props = reference_network_input(x, spacing, pm, cm)
    theirs, their_props = _tptbox_input(x, spacing)
    assert ours.dtype == np.float16 == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    for key in (
        "bbox_used_for_cropping",
        "shape_before_cropping",
        "shape_after_cropping_and_before_resampling",
    ):
        assert [list(v) if isinstance(v, tuple | list) else v for v in props[key]] == [
            list(v) if isinstance(v, tuple | list) else v for v in their_props[key]
        ]
    assert abs(float(ours.astype(np.float32).std()) - 1.0) < 1e-3


def test_chain_from_a_real_scan_equals_the_reference_chain() -> None:
    """The tptbox real T2w crop through our prepare + model grid + input, and through the same
    steps done with TPTBox as `spineps` does them: identical network input."""
    import TPTBox
    from TPTBox import NII

    from spineps_dask.io.nifti import load_volume
    from spineps_dask.models.config import load_config
    from spineps_dask.pipeline.segment import prepare

    path = Path(TPTBox.__file__).parent / "tests" / "sample_mri" / "sub-mri_label-6_T2w.nii.gz"
    config = load_config(SEMANTIC / "inference_config.json")
    orientation, resolution = config.model_expected_orientation, config.resolution_range

    prepared, _ = prepare(load_volume(path), n4=False)
    from spineps_dask.geometry import rescale

    grid = rescale(prepared.reorient(orientation), resolution, order=3)
    pm, cm = _managers(tptbox=False)
    spacing = tuple(float(z) for z in reference_zoom(grid.affine)[::-1])
    ours, _ = reference_network_input(grid.data.transpose(2, 1, 0)[None], spacing, pm, cm)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nii = NII.load(path, seg=False)
        nii.normalize_to_range_(0, 1500, verbose=False)
        crop = nii.compute_crop(dist=0)
        box = nii.apply_crop(crop)
        box.normalize_to_range_(0, 1500, verbose=False)
        nii[crop] = box
        nii = nii.pad_to(tuple(s + 8 for s in nii.shape))
        nii.reorient_(orientation)
        nii.rescale_(resolution)
    a = nii.get_array().astype(np.float16)
    theirs, _ = _tptbox_input(a.transpose(2, 1, 0)[None], nii.zoom[::-1])
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
