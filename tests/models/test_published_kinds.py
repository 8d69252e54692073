"""Every published folder kind runs end to end (issue 16, item 4): the semantic kinds T2w,
T1w, Vibe (MR: normalised, N4 as asked) and CT, run as the reference runs CT; the sagittal and
the CT instance model; the T2w and the CT labelling model.

`spineps` 2.1.3 neither normalises nor N4-corrects a scan for a CT model (``segment_image``:
``proc_normalize_input = False``, ``proc_sem_n4_bias_correction = False``); the padding then
takes the scan's minimum and nnU-Net's ``CTNormalization`` (percentile clip, dataset mean/std)
does the rest. Folders in the published layouts with small random weights
(`tests/models/published.py`) stand in for the real ones: installed under their published
names in a models directory, they run through ``spineps-dask segment`` by name, as after
``models download ct ct_instance ct_labeling``; a labelling model for the other kind of scan
(CT / MR) is refused before anything runs, as the reference refuses it. The same sets through
``run``: ``tests/distributed/test_published_run.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spineps_dask.cli import app
from spineps_dask.geometry import Volume
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.models.config import CONFIG_NAME, config_to_json, load_config, parse_config
from spineps_dask.models.folders import check_weights
from spineps_dask.models.instance import InstanceModel
from spineps_dask.models.registry import PUBLISHED, published_model
from spineps_dask.models.semantic import SemanticModel
from spineps_dask.pipeline.segment import ReferenceNumbering, model_modality, prepare, segment

from . import published as pub
from .conftest import SEMANTIC_CONFIG, write_tiny_instance

CT_PROPERTIES = pub.CT_PROPERTIES
runner = CliRunner()
#: The published model sets: semantic, instance and labelling model, the scan, its suffix.
SETS = {
    "ct": ("ct", "ct_instance", "ct_labeling", pub.ct_scan, "ct"),
    "t2w": ("t2w", "instance", "t2w_labeling", pub.t2w_scan, "T2w"),
}


def _ct_scan() -> Volume:
    return pub.ct_scan()


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
    folder = pub.semantic(tmp_path, "ct")
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


def test_every_published_folder_validates_as_published(published_models_dir: Path) -> None:
    """``models check`` (weights loaded) passes on the models directory; each folder has the
    kind and modality the registry gives its name, and passes the run's weight check."""
    result = runner.invoke(app, ["models", "check", str(published_models_dir)])
    assert result.exit_code == 0, result.output
    names = [n for n in PUBLISHED if pub.folder_of(published_models_dir, n).is_dir()]
    assert sorted(names) == sorted(n for s in SETS.values() for n in s[:3])
    for name in names:
        folder = check_weights(pub.folder_of(published_models_dir, name))
        assert folder.kind == published_model(name).kind, name
        if folder.kind != "instance":
            assert folder.config.modality == (published_model(name).modality,), name
    ct_inst = InstanceModel.from_folder(pub.folder_of(published_models_dir, "ct_instance"))
    assert ct_inst.n_channels == 11 and ct_inst.config is not None
    assert ct_inst.config.n_input_channels == 10  # the reference's default mapping


@pytest.mark.parametrize("kind", sorted(SETS))
def test_a_published_model_set_runs_through_segment(
    published_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """``spineps-dask segment`` with the three published models by name: the masks on the
    scan's grid, vertebrae found by the instance model and named by the labelling model."""
    semantic, instance, labeling, make_scan, suffix = SETS[kind]
    monkeypatch.setenv("SPINEPS_SEGMENTOR_MODELS", str(published_models_dir))
    image = make_scan()
    scan = save_volume(image, tmp_path / f"sub-01_{suffix}.nii.gz")
    out = tmp_path / "out"
    models = [published_model(n).installed_name for n in (semantic, instance, labeling)]
    args = ["segment", str(scan), "--out", str(out), "--no-snapshot"]
    args += ["--semantic-model", models[0], "--instance-model", models[1]]
    args += ["--labeling-model", models[2]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stem = f"sub-01_mod-{suffix}"
    sem = load_volume(out / f"{stem}_seg-spine_msk.nii.gz")
    inst = load_volume(out / f"{stem}_seg-vert_msk.nii.gz")
    assert sem.shape == inst.shape == image.shape
    np.testing.assert_allclose(inst.affine, image.affine)
    vertebrae = [v for v in np.unique(inst.data) if 0 < v < 100]
    assert vertebrae, "the instance model found no vertebra"
    ctd = json.loads((out / f"{stem}_ctd.json").read_text())
    assert ctd[0]["naming"]["naming"] == "model+anchors"
    assert "named by model+anchors" in " ".join(result.output.split())


def test_a_labelling_model_for_other_scans_is_refused(
    published_models_dir: Path, tmp_path: Path
) -> None:
    """A CT semantic model with the MR labelling model (and the other way round) is refused
    before a scan is read or a store made: by `segment`, its command and `run_batch`."""
    from spineps_dask.batch import run_batch
    from spineps_dask.config import RunConfig
    from spineps_dask.errors import ModelError
    from spineps_dask.models.labeling import LabelingModel

    def folder(name: str) -> Path:
        return pub.folder_of(published_models_dir, name)

    ct = SemanticModel.from_folder(folder("ct"), device="cpu", threads=1)
    inst = InstanceModel.from_folder(folder("ct_instance"), device="cpu")
    mr_labeling = LabelingModel.from_folder(folder("t2w_labeling"), device="cpu")
    with pytest.raises(ModelError, match="use the ct_labeling model"):
        segment(pub.ct_scan(), ct, inst, labeling_model=mr_labeling)
    scan = save_volume(pub.t2w_scan(), tmp_path / "sub-01_T2w.nii.gz")
    args = ["segment", str(scan), "--semantic-model", str(folder("t2w"))]
    args += ["--instance-model", str(folder("instance"))]
    result = runner.invoke(app, [*args, "--labeling-model", str(folder("ct_labeling"))])
    assert result.exit_code == 2 and "t2w_labeling" in " ".join(result.output.split())
    cfg = RunConfig(
        semantic_model=folder("ct"),
        instance_model=folder("ct_instance"),
        labeling_model=folder("t2w_labeling"),
    )
    with pytest.raises(ModelError, match="is for T2w scans but the semantic model"):
        run_batch(tmp_path / "store.zarr", cfg, bids=tmp_path, client=object())
    assert not (tmp_path / "store.zarr").exists()


def test_reference_numbering_follows_the_semantic_model(published_models_dir: Path) -> None:
    """Reference mode numbers from C1 with a CT model that segments C1 (``has_c1``), from C2
    otherwise; ``sacrum_ids`` come from the semantic model's config."""
    ct = load_config(pub.folder_of(published_models_dir, "ct") / CONFIG_NAME)
    t2w = load_config(pub.folder_of(published_models_dir, "t2w") / CONFIG_NAME)
    assert ct.has_c1 and ReferenceNumbering.from_config(ct) == ReferenceNumbering(0, (26,))
    assert ReferenceNumbering.from_config(t2w) == ReferenceNumbering(1, (26,))
    raw = json.loads((pub.folder_of(published_models_dir, "t2w") / CONFIG_NAME).read_text())
    other = parse_config({**raw, "has_c1": True, "sacrum_ids": [26, 27]})
    assert ReferenceNumbering.from_config(other) == ReferenceNumbering(1, (26, 27))  # MR
    # Written back only when not the default, so folders written before keep their version.
    assert "sacrum_ids" not in config_to_json(t2w)
    assert config_to_json(other)["sacrum_ids"] == [26, 27]
