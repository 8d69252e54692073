"""Every published semantic folder kind runs end to end (issue 16, item 4): T2w, T1w and Vibe
(MR: normalised, N4 as asked) and CT, run as the reference runs CT.

`spineps` 2.1.3 neither normalises nor N4-corrects a scan for a CT model (``segment_image``:
``proc_normalize_input = False``, ``proc_sem_n4_bias_correction = False``); the padding then
takes the scan's minimum and nnU-Net's ``CTNormalization`` (percentile clip, dataset mean/std)
does the rest. A tiny random CT folder in the published layout stands in for the real one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from spineps_dask.geometry import Volume
from spineps_dask.models import nnunet_folder as nf
from spineps_dask.models.config import write_config
from spineps_dask.models.instance import InstanceModel
from spineps_dask.models.semantic import SemanticModel
from spineps_dask.pipeline.segment import model_modality, prepare, segment

from .conftest import SEMANTIC_CONFIG, TINY_SPEC, write_tiny_instance

CT_PROPERTIES = {
    "max": 2000.0,
    "mean": 300.0,
    "median": 250.0,
    "min": -1024.0,
    "percentile_00_5": -200.0,
    "percentile_99_5": 1500.0,
    "std": 350.0,
}


def _ct_folder(out: Path) -> Path:
    torch.manual_seed(0)
    plans = nf.make_plans(TINY_SPEC)
    plans["configurations"]["3d_fullres"]["normalization_schemes"] = ["CTNormalization"]
    plans["foreground_intensity_properties_per_channel"] = {"0": CT_PROPERTIES}
    names = ["Vertebra_Corpus_border", "Vertebra_Disc", "Spinal_Canal", "Spinal_Cord"]
    weights = [nf.build_network(plans, 5).state_dict()]
    nf.write_results_folder(out / "nnunet", plans, nf.make_dataset_json(names), weights)
    write_config(out, replace(SEMANTIC_CONFIG, log_name="tiny-ct", modality=("CT",)))
    return out


def _ct_scan() -> Volume:
    rng = np.random.default_rng(0)
    data = np.full((40, 60, 24), -1000, np.int16)
    data[8:32, 10:50, 4:20] = rng.integers(-100, 1400, (24, 40, 16))
    return Volume(data, np.diag([1.2, 1.2, 1.2, 1.0]))  # isotropic, as CT usually is


def test_ct_scan_keeps_its_hounsfield_units() -> None:
    """No min-shift, no scaling, no N4 for CT; the pad takes the scan's minimum, not 0."""
    scan = _ct_scan()
    prepared, record = prepare(scan, n4=True, modality="CT")
    inner = prepared.data[4:-4, 4:-4, 4:-4]
    np.testing.assert_array_equal(inner, scan.data)
    assert prepared.data[0, 0, 0] == -1000 and record.recipe == "reference"


@pytest.mark.slow
def test_ct_semantic_model_runs_end_to_end(tmp_path: Path) -> None:
    """A CT folder (modality CT, CTNormalization plans) segments a CT volume: outputs on the
    scan grid, labels from the folder's map, and the network input is clipped and z-scored
    with the folder's own intensity statistics."""
    folder = _ct_folder(tmp_path / "ct")
    model = SemanticModel.from_folder(folder, device="cpu", threads=1)
    assert model_modality(model.config) == "CT"
    inst = InstanceModel.from_folder(write_tiny_instance(tmp_path / "inst"), device="cpu")
    seen: list[np.ndarray] = []
    orig = model.network_logits

    def spy(x: np.ndarray, **k: object) -> torch.Tensor:
        seen.append(np.asarray(x, dtype=np.float32))
        return orig(x, **k)

    model.network_logits = spy  # type: ignore[method-assign]
    scan = _ct_scan()
    result = segment(scan, model, inst, n4=True, subject="ct")
    assert result.semantic.shape == scan.shape and result.instance.shape == scan.shape
    assert set(np.unique(result.semantic.data)) <= {0, 49, 100, 61, 60}
    x = seen[0]
    lo = (CT_PROPERTIES["percentile_00_5"] - CT_PROPERTIES["mean"]) / CT_PROPERTIES["std"]
    hi = (CT_PROPERTIES["percentile_99_5"] - CT_PROPERTIES["mean"]) / CT_PROPERTIES["std"]
    assert x.min() >= lo - 1e-2 and x.max() <= hi + 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["T2w", "T1w", "Vibe"])
def test_mr_semantic_kinds_run_end_to_end(tmp_path: Path, modality: str) -> None:
    """An MR folder of each published kind segments a sagittal scan; intensities are prepared
    the MR way (shifted to 0, at most 1500)."""
    from .conftest import write_tiny_semantic

    config = replace(SEMANTIC_CONFIG, log_name=f"tiny-{modality}", modality=(modality,))
    folder = write_tiny_semantic(tmp_path / modality, config=config)
    model = SemanticModel.from_folder(folder, device="cpu", threads=1)
    assert model_modality(model.config) == "MR"
    inst = InstanceModel.from_folder(write_tiny_instance(tmp_path / "inst"), device="cpu")
    rng = np.random.default_rng(1)
    scan = Volume(rng.integers(0, 3000, (16, 48, 40)).astype(np.int16), np.diag([3.0, 1, 1, 1]))
    prepared, _ = prepare(scan, n4=False, modality=model_modality(model.config))
    assert prepared.data.min() == 0 and prepared.data.max() <= 1500
    result = segment(scan, model, inst, n4=False, subject=modality)
    assert result.semantic.shape == scan.shape
