"""Tiny, randomly initialised model folders written in the reference layout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from spineps_dask.models import nnunet_folder as nf
from spineps_dask.models.config import ModelConfig, write_config
from spineps_dask.models.instance import save_checkpoint
from spineps_dask.models.unet3d import Unet3D

TINY_SPEC = nf.PlainUNetSpec(
    features=(4, 8, 16),
    strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)),
    patch_size=(32, 32, 16),
    spacing=(1.5, 1.5, 3.0),
)
SEMANTIC_CONFIG = ModelConfig(
    log_name="tiny-semantic",
    modality=("T2w",),
    acquisition="sag",
    modeltype="nnunet",
    model_expected_orientation=("P", "I", "R"),
    available_folds=(0,),
    inference_augmentation=False,
    resolution_range=(1.5, 1.5, 3.0),
    default_step_size=0.5,
    labels={1: 49, 2: 100, 3: 61, 4: 60},
)
INSTANCE_CONFIG = ModelConfig(
    log_name="tiny-instance",
    modality=("SEG",),
    acquisition="sag",
    modeltype="unet",
    model_expected_orientation=("P", "I", "R"),
    available_folds=(0,),
    inference_augmentation=False,
    resolution_range=(1.5, 1.5, 3.0),
    default_step_size=0.5,
    labels={0: 0, 1: 1, 2: 2, 3: 3},
    expected_inputs=("seg",),
    cutout_size=(32, 48, 16),
)


def write_tiny_semantic(
    out: Path, *, n_folds: int = 1, config: ModelConfig = SEMANTIC_CONFIG
) -> Path:
    """A random PlainConvUNet as nnU-Net results in ``out/nnunet`` + ``inference_config.json``."""
    torch.manual_seed(0)
    plans = nf.make_plans(TINY_SPEC)
    names = ["Vertebra_Corpus_border", "Vertebra_Disc", "Spinal_Canal", "Spinal_Cord"]
    folds = [nf.build_network(plans, 5).state_dict() for _ in range(n_folds)]
    nf.write_results_folder(out / "nnunet", plans, nf.make_dataset_json(names), folds)
    write_config(out, replace(config, available_folds=tuple(range(n_folds))))
    return out


def write_tiny_instance(out: Path, *, dim: int = 8, channels: int = 10) -> Path:
    """A random Unet3D as ``out/instance_weights.ckpt`` + ``inference_config.json``."""
    torch.manual_seed(0)
    save_checkpoint(out / "instance_weights.ckpt", Unet3D(dim, channels=channels))
    write_config(out, INSTANCE_CONFIG)
    return out


@pytest.fixture(scope="session")
def tiny_semantic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_semantic(tmp_path_factory.mktemp("models") / "semantic")


@pytest.fixture(scope="session")
def tiny_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_instance(tmp_path_factory.mktemp("models") / "instance")
