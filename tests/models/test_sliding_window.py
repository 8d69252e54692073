"""Sliding-window logits summed as `spineps` 2.1.3 (TPTBox's vendored nnU-Net predictor) sums
them, so that the argmax agrees voxel for voxel (issue 22: >= 99.9 % asked, 100 % measured).

TPTBox is a test extra: its predictor runs the same folder and input beside ours.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from spineps_dask.models.semantic import SemanticModel
from spineps_dask.models.sliding_window import reference_gaussian

from .conftest import write_tiny_semantic

needs_tptbox = pytest.mark.skipif(
    importlib.util.find_spec("TPTBox") is None, reason="tptbox (test extra) not installed"
)


@needs_tptbox
def test_gaussian_is_tptbox_gaussian() -> None:
    """The importance map is TPTBox's (float16 before scaling to 1000), not nnunetv2's."""
    from TPTBox.segmentation.nnUnet_utils.sliding_window_prediction import compute_gaussian

    cpu = torch.device("cpu")
    theirs = compute_gaussian(
        (48, 96, 32), sigma_scale=1 / 8, value_scaling_factor=1000, device=cpu
    )
    ours = reference_gaussian((48, 96, 32), device=cpu)
    assert ours.dtype == torch.float16
    assert torch.equal(ours, theirs)


@needs_tptbox
@pytest.mark.parametrize("n_folds", [1, 2])
def test_logits_equal_tptbox_predictor(tmp_path: Path, n_folds: int) -> None:
    """Same folder, same float16 input larger than one window: TPTBox's predictor and ours give
    the same float16 logits (one torch thread on both sides), averaged over the folds."""
    from TPTBox.segmentation.nnUnet_utils.inference_api import load_inf_model

    folder = write_tiny_semantic(tmp_path / "semantic", n_folds=n_folds)
    torch.set_num_threads(1)
    ours = SemanticModel.from_folder(folder, device="cpu", threads=1)
    theirs = load_inf_model(
        folder / "nnunet",
        step_size=0.5,
        ddevice="cpu",
        use_folds=tuple(str(f) for f in range(n_folds)),
        init_threads=False,
        verbose=False,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1, 40, 50, 20)).astype(np.float16)
    mine = ours.network_logits(x, reference=True)
    ref = theirs.predict_logits_from_preprocessed_data(torch.from_numpy(x))
    assert mine.dtype == torch.float16
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())
