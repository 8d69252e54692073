"""Model folders in the published SPINEPS layouts, with small random weights.

Each folder is written as ``models download`` installs the release archive: under its installed
name in a models directory (``CT_instance_v2.0.0``, `spineps_dask.models.registry`), holding
only what the reference's files hold (its config keys, no ``training`` record of this project),
as `spineps` 2.1.3 writes and reads them (``shared/docs/spineps-reference.md``, "Model folders",
"Running the reference package beside this project", "Published weights and the labelling
phase"; ``seg_model.SegmentationModelUnet3D.load``, ``lab_model``):

- semantic (``T2w_semantic``, ``CT_semantic``): ``inference_config.json`` beside an nnU-Net v2
  results folder ``nnUNetTrainer__nnUNetPlans__3d_fullres`` (``plans.json``, ``dataset.json``,
  ``fold_0/checkpoint_final.pth``). The CT one has ``modality`` CT, ``has_c1`` and nnU-Net's
  ``CTNormalization`` with the dataset's intensity statistics in the plans.
- instance: one ``*weights*.ckpt`` Lightning checkpoint, ``state_dict`` keys ``network.*``.
  ``instance_sagittal`` is the legacy ``PLNet`` (16 wide, 10 channels; its hyper-parameters
  are only ``opt`` and ``do2D``); ``CT_instance`` the newer one (``architectures_new``: 8
  wide, 11 channels, the same two hyper-parameters, no size among them), with the reference's
  default instance-input mapping (no ``mapping`` key: 10 of its 11 channels used).
- labelling (``T2w_labeling``, ``CT_labeling``): ``modeltype`` classifier, one
  ``*val_f1=*valf1-weights.ckpt`` of the reference's ``PLClassifier``: a DenseNet121, heads
  ``VERTEXACT`` (26), ``REGION`` (3), ``VERTREL`` (6), float32, and its options pickled as the
  reference pickles them (a ``spineps.architectures.pl_densenet.ARGS_MODEL`` object, the class
  `tests/models/data/reference_labeling_hparams.ckpt` was captured with).

What is not known of the real archives (file names inside, resolutions, patch sizes) is chosen
small, so that a scan runs through in seconds: the tiny nnU-Net of `conftest.TINY_SPEC`, cutouts
of 32 x 48 x 16 voxels, labelling patches of 32 x 64 x 32 (the reference's default is
152 x 168 x 32).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineps_dask.geometry import Volume
from spineps_dask.models import nnunet_folder as nf
from spineps_dask.models.registry import published_model
from spineps_dask.models.unet3d import Unet3D

from .conftest import TINY_SPEC

#: Intensity statistics of a CT training set (HU), as nnU-Net's plans keep them.
CT_PROPERTIES = {
    "max": 2000.0,
    "mean": 300.0,
    "median": 250.0,
    "min": -1024.0,
    "percentile_00_5": -200.0,
    "percentile_99_5": 1500.0,
    "std": 350.0,
}
NNUNET_FOLDER = "nnUNetTrainer__nnUNetPlans__3d_fullres"
LABELING_HEADS = {"VERTEXACT": 26, "REGION": 3, "VERTREL": 6}
LABELING_SIZE = (32, 64, 32)

_PIR = ["P", "I", "R"]


def folder_of(models: Path, name: str) -> Path:
    """Where ``models download NAME`` installs the published model ``name``."""
    return Path(models) / published_model(name).installed_name


def _write_config(folder: Path, **keys: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inference_config.json").write_text(json.dumps(keys, indent=4))


def semantic(models: Path, name: str = "t2w", *, seed: int = 0) -> Path:
    """``T2w_semantic_v1.0.9`` (``t2w``, ``t1w``, ``vibe``) or ``CT_semantic_v2.0.0`` (``ct``)."""
    published = published_model(name)
    folder = folder_of(models, name)
    ct = published.modality == "CT"
    torch.manual_seed(seed)
    plans = nf.make_plans(TINY_SPEC)
    if ct:
        plans["configurations"]["3d_fullres"]["normalization_schemes"] = ["CTNormalization"]
        plans["foreground_intensity_properties_per_channel"] = {"0": CT_PROPERTIES}
    names = ["Vertebra_Corpus_border", "Vertebra_Disc", "Spinal_Canal", "Spinal_Cord"]
    weights = [nf.build_network(plans, len(names) + 1).state_dict()]
    dataset = nf.make_dataset_json(names, channel="CT" if ct else "T2w")
    nf.write_results_folder(folder / NNUNET_FOLDER, plans, dataset, weights)
    _write_config(
        folder,
        log_name=published.folder,
        modality=published.modality,
        acquisition="iso" if ct else "sag",
        modeltype="nnunet",
        model_expected_orientation=_PIR,
        available_folds=1,
        inference_augmentation=False,
        resolution_range=list(TINY_SPEC.spacing),
        default_step_size=0.5,
        labels={str(k + 1): v for k, v in enumerate(names)},
        has_c1=ct,
    )
    return folder


def instance(models: Path, name: str = "instance", *, seed: int = 0) -> Path:
    """``instance_sagittal_v1.2.0`` (legacy ``PLNet``) or ``CT_instance_v2.0.0`` (new one)."""
    published = published_model(name)
    folder = folder_of(models, name)
    ct = published.name == "ct_instance"
    torch.manual_seed(seed)
    net = Unet3D(8, channels=11) if ct else Unet3D(16, channels=10)
    opt = argparse.Namespace(
        channelwise=True, n_epoch=100, lr=1e-4, lr_end_factor=0.01, l2_reg_w=1e-4, dsc_loss_w=1.0
    )
    ckpt = {
        "epoch": 99,
        "global_step": 12345,
        "pytorch-lightning_version": "2.0.4",
        "state_dict": {"network." + k: v for k, v in net.state_dict().items()},
        "hyper_parameters": {"opt": opt, "do2D": False},
    }
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / f"{published.folder}_epoch=99_weights.ckpt")
    _write_config(
        folder,
        log_name=published.folder,
        modality="SEG",
        acquisition="iso" if ct else "sag",
        modeltype="unet",
        model_expected_orientation=_PIR,
        available_folds=1,
        inference_augmentation=False,
        resolution_range=list(TINY_SPEC.spacing),
        default_step_size=0.5,
        labels={"1": 1, "2": 2, "3": 3},
        expected_inputs=["seg"],
        cutout_size=[32, 48, 16],
    )
    return folder


@contextlib.contextmanager
def _reference_classes() -> Iterator[type]:
    """A stand-in ``spineps.architectures.pl_densenet.ARGS_MODEL`` importable while saving, so
    the checkpoint names the reference's class exactly as a published one does."""
    names = ("spineps", "spineps.architectures", "spineps.architectures.pl_densenet")
    saved = {n: sys.modules.get(n) for n in names}
    module = types.ModuleType(names[-1])

    class ARGS_MODEL:  # the reference's class name
        pass

    ARGS_MODEL.__module__, ARGS_MODEL.__qualname__ = names[-1], "ARGS_MODEL"
    module.ARGS_MODEL = ARGS_MODEL  # type: ignore[attr-defined]
    for n in names[:-1]:
        sys.modules[n] = types.ModuleType(n)
    sys.modules[names[-1]] = module
    try:
        yield ARGS_MODEL
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def labeling(models: Path, name: str = "t2w_labeling", *, seed: int = 0) -> Path:
    """``T2w_labeling_v1.4.0`` or ``CT_labeling_v1.4.0``: the reference's labelling folder."""
    from spineps_dask.models.labeling import LabelingNetwork

    published = published_model(name)
    folder = folder_of(models, name)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = LabelingNetwork(LABELING_HEADS, backbone="DENSENET121").eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "epoch=41-step=8904-val_f1=0.9712valf1-weights.ckpt"
    with _reference_classes() as args_model:
        opt = args_model()
        opt.__dict__.update(
            backbone="DENSENET121",
            classification_conv=False,
            classification_linear=True,
            n_epoch=100,
            lr=1e-4,
            l2_regularization_w=1e-6,
            scheduler_endfactor=1e-3,
            in_channel=1,
            not_pretrained=True,
            mse_weighting=0.0,
            dropout=0.05,
            weight_decay=0,
            num_classes=26,
            n_channel_p_group=None,
            final_size=LABELING_SIZE,
            ds_name="sagittal_v4corpus_npz",
        )
        ckpt = {
            "epoch": 41,
            "global_step": 8904,
            "pytorch-lightning_version": "2.6.6",
            "state_dict": net.state_dict(),
            "hyper_parameters": {"opt": opt, "group_2_n_channel": dict(LABELING_HEADS)},
        }
        torch.save(ckpt, path)
    _write_config(
        folder,
        log_name=published.folder,
        modality=published.modality,
        acquisition="sag",
        modeltype="classifier",
        model_expected_orientation=_PIR,
        available_folds=1,
        inference_augmentation=False,
        resolution_range=[2.0, 2.0, 2.0],
        default_step_size=0.5,
        labels={"0": 0},
    )
    return folder


def published_models(models: Path) -> Path:
    """A models directory with the CT set (``ct``, ``ct_instance``, ``ct_labeling``) and the
    MR set (``t2w``, ``instance``, ``t2w_labeling``) installed."""
    for name in ("ct", "t2w"):
        semantic(models, name)
    for name in ("ct_instance", "instance"):
        instance(models, name)
    for name in ("ct_labeling", "t2w_labeling"):
        labeling(models, name)
    return models


def ct_scan(seed: int = 0) -> Volume:
    """A small CT volume in Hounsfield units (air -1000), isotropic 1.2 mm."""
    rng = np.random.default_rng(seed)
    data = np.full((40, 60, 24), -1000, np.int16)
    data[8:32, 10:50, 4:20] = rng.integers(-100, 1400, (24, 40, 16))
    return Volume(data, np.diag([1.2, 1.2, 1.2, 1.0]))


def t2w_scan(seed: int = 1) -> Volume:
    """A small sagittal MR volume (thick slices left-right)."""
    rng = np.random.default_rng(seed)
    return Volume(rng.integers(0, 3000, (16, 48, 40)).astype(np.int16), np.diag([3.0, 1, 1, 1]))
