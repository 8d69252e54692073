"""Model-folder discovery and validation: broken folders are named with the exact problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spineps_dask.errors import ModelError
from spineps_dask.models.config import MODELS_ENV, models_root
from spineps_dask.models.folders import find_model, load_model_folder, scan_models

from .conftest import write_tiny_instance, write_tiny_semantic
from .releases import labeling_folder


def test_valid_folders_load_with_kind_and_weights(tiny_semantic: Path, tiny_instance: Path) -> None:
    """Both tiny folders pass and point at their weights."""
    sem = load_model_folder(tiny_semantic)
    assert sem.kind == "semantic" and (sem.weights / "plans.json").is_file()
    inst = load_model_folder(tiny_instance)
    assert inst.kind == "instance" and inst.weights.name == "instance_weights.ckpt"


def test_missing_fold_checkpoint(tmp_path: Path) -> None:
    """A fold listed in available_folds without checkpoint_final.pth is reported by path."""
    folder = write_tiny_semantic(tmp_path / "m", n_folds=2)
    (folder / "nnunet" / "fold_1" / "checkpoint_final.pth").unlink()
    with pytest.raises(ModelError, match=r"missing nnunet/fold_1/checkpoint_final\.pth"):
        load_model_folder(folder)


def test_label_map_mismatch_with_dataset_json(tmp_path: Path) -> None:
    """dataset.json with a class the config does not label is a mismatch."""
    folder = write_tiny_semantic(tmp_path / "m")
    ds_path = folder / "nnunet" / "dataset.json"
    ds = json.loads(ds_path.read_text())
    ds["labels"]["extra"] = 5
    ds_path.write_text(json.dumps(ds))
    with pytest.raises(ModelError, match=r"label map mismatch.*\[1, 2, 3, 4\].*\[1, 2, 3, 4, 5\]"):
        load_model_folder(folder)


@pytest.mark.parametrize("n_ckpts", [0, 2])
def test_instance_needs_exactly_one_weights_checkpoint(tmp_path: Path, n_ckpts: int) -> None:
    """Zero or two ``*weights*.ckpt`` files are refused with the count."""
    folder = write_tiny_instance(tmp_path / "i")
    ckpt = folder / "instance_weights.ckpt"
    if n_ckpts == 0:
        ckpt.unlink()
    else:
        shutil.copy(ckpt, folder / "other_weights.ckpt")
    with pytest.raises(ModelError, match=f"exactly one '\\*weights\\*.ckpt'.*found {n_ckpts}"):
        load_model_folder(folder)


def test_two_configs_in_one_tree_are_refused(tmp_path: Path) -> None:
    """The reference demands exactly one inference_config.json per model folder."""
    folder = write_tiny_instance(tmp_path / "i")
    (folder / "sub").mkdir()
    shutil.copy(folder / "inference_config.json", folder / "sub" / "inference_config.json")
    with pytest.raises(ModelError, match=r"exactly one inference_config\.json.*found 2"):
        load_model_folder(folder)


def test_wrong_kind_is_refused(tiny_instance: Path) -> None:
    """Asking for a semantic model but pointing at an instance folder fails clearly."""
    with pytest.raises(ModelError, match=r"is a instance model.*semantic model is needed"):
        load_model_folder(tiny_instance, kind="semantic")


def test_discovery_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SPINEPS_SEGMENTOR_MODELS lists good and broken sub-folders; names resolve to folders."""
    write_tiny_instance(tmp_path / "inst")
    (tmp_path / "broken").mkdir()
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    entries = {e.path.name: e for e in scan_models()}
    assert entries["inst"].folder is not None
    assert entries["broken"].folder is None
    assert "found 0" in entries["broken"].problems[0]
    assert find_model("inst").kind == "instance"
    with pytest.raises(ModelError, match=r"no model 'nope'.*\['broken', 'inst'\]"):
        find_model("nope")


def test_no_models_directory(models_env: Path) -> None:
    """Without argument or environment variable the default directory is used; while it does
    not exist the error names it, the variable and how to install a model."""
    with pytest.raises(ModelError, match=rf"{models_env} \(the default; \${MODELS_ENV} is unset\)"):
        models_root()
    with pytest.raises(ModelError, match=r"spineps-dask models download t2w"):
        models_root()
    models_env.mkdir(parents=True)
    assert models_root() == models_env


def test_labeling_folder_needs_a_checkpoint(tmp_path: Path) -> None:
    """A 'classifier' config is a labelling model; without a '*.ckpt' it is refused."""
    folder = labeling_folder(tmp_path / "lab")
    model = load_model_folder(folder, kind="labeling")
    assert model.kind == "labeling" and model.weights.name.endswith("valf1-weights.ckpt")
    for ckpt in folder.glob("*.ckpt"):
        ckpt.unlink()
    with pytest.raises(ModelError, match=r"no '\*\.ckpt' checkpoint.*labelling model needs one"):
        load_model_folder(folder)


def test_scan_leaves_out_hidden_folders(tmp_path: Path) -> None:
    """Downloads in progress (hidden staging folders) are not listed as models."""
    write_tiny_instance(tmp_path / "inst")
    write_tiny_instance(tmp_path / ".inst.partial-x1")
    assert [e.path.name for e in scan_models(tmp_path)] == ["inst"]
