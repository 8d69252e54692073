"""The semantic model: an nnU-Net folder in the reference layout, predicted step by step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spineps_dask.geometry import Volume
from spineps_dask.labels import Semantic
from spineps_dask.models.semantic import SemanticModel

from .conftest import write_tiny_semantic


def _scan(shape: tuple[int, int, int] = (20, 44, 36)) -> Volume:
    """A sagittal scan stored L-A-S (not the model's P-I-R), 3 x 0.8 x 0.8 mm, off-origin."""
    rng = np.random.default_rng(1)
    data = rng.normal(100.0, 20.0, shape).astype(np.float32)
    data[:, 10:30, 8:28] += 200.0
    affine = np.diag([-3.0, 0.8, 0.8, 1.0])
    affine[:3, 3] = (30.0, -12.0, 40.0)
    return Volume(data, affine)


@pytest.fixture(scope="module")
def model(tiny_semantic: Path) -> SemanticModel:
    return SemanticModel.from_folder(tiny_semantic, device="cpu", threads=1)


def test_output_keeps_input_geometry_and_uses_the_label_scheme(model: SemanticModel) -> None:
    """Output has the input's shape and affine, dtype uint8, labels only from the config map."""
    scan = _scan()
    seg = model.predict(scan)
    assert seg.shape == scan.shape
    np.testing.assert_array_equal(seg.affine, scan.affine)
    assert seg.data.dtype == np.uint8
    allowed = {0, int(Semantic.CORPUS), int(Semantic.DISC), int(Semantic.CANAL), int(Semantic.CORD)}
    assert set(np.unique(seg.data).tolist()) <= allowed
    assert len(np.unique(seg.data)) >= 2  # a random net still separates something


def test_matches_nnunet_own_single_array_path(model: SemanticModel) -> None:
    """Our step-by-step path gives nnU-Net's own predict_single_npy_array result voxel for voxel."""
    scan = _scan().reorient(("P", "I", "R"))
    ours = model.predict_indices(scan.data, scan.spacing)
    props = {"spacing": list(scan.spacing)}
    theirs = model.predictor.predict_single_npy_array(scan.data[None].astype(np.float32), props)
    agreement = float((ours == theirs).mean())
    assert agreement > 0.999, agreement


def test_network_sees_the_reference_axis_order(model: SemanticModel) -> None:
    """Like the reference (TPTBox feeds nnU-Net the model-oriented array with its axes and
    spacing reversed, SimpleITK order), so published and demo weights see what they trained on."""
    scan = _scan()
    oriented = scan.reorient(model.config.model_expected_orientation)
    props = {"spacing": list(oriented.spacing[::-1])}
    theirs = model.predictor.predict_single_npy_array(
        oriented.data.transpose(2, 1, 0)[None].astype(np.float32), props
    )
    expected = Volume(model._lut[theirs.transpose(2, 1, 0)], oriented.affine)
    ours = model.predict(scan).reorient(model.config.model_expected_orientation)
    agreement = float((ours.data == expected.data).mean())
    assert agreement > 0.999, agreement


def test_orientation_is_undone_exactly(model: SemanticModel) -> None:
    """Predicting a flipped/permuted copy of a scan gives the flipped/permuted segmentation."""
    scan = _scan()
    seg = model.predict(scan).reorient(("P", "I", "R")).data
    pir = scan.reorient(("P", "I", "R"))
    seg_pir = model.predict(pir).data
    np.testing.assert_array_equal(seg, seg_pir)


def test_fold_averaging_uses_every_fold(tmp_path: Path) -> None:
    """Two different folds averaged differ from fold 0 alone; folds= selects a subset."""
    folder = write_tiny_semantic(tmp_path / "two", n_folds=2)
    both = SemanticModel.from_folder(folder, device="cpu", threads=1)
    one = SemanticModel.from_folder(folder, device="cpu", threads=1, folds=(0,))
    assert len(both.predictor.list_of_parameters) == 2
    assert len(one.predictor.list_of_parameters) == 1
    scan = _scan()
    assert not np.array_equal(both.predict(scan).data, one.predict(scan).data)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_prediction_agrees_with_cpu(tiny_semantic: Path, model: SemanticModel) -> None:
    """On CUDA (float16 autocast) the labels agree with the CPU result on >= 99% of voxels."""
    gpu = SemanticModel.from_folder(tiny_semantic, device="cuda")
    assert gpu.device.type == "cuda"
    scan = _scan()
    agreement = float((gpu.predict(scan).data == model.predict(scan).data).mean())
    assert agreement >= 0.99, agreement
