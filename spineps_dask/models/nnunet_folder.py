"""Write nnU-Net v2 results folders (plans, dataset, fold checkpoints) from this project.

Used by the demo-model training and by the tests, which need a real folder that nnunetv2's own
loader accepts. Key set from ``shared/docs/spineps-reference.md`` ("nnU-Net v2 results folder
that nnunetv2 2.8.1 loads").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CONFIGURATION = "3d_fullres"
TRAINER = "nnUNetTrainer"
_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"


@dataclass(frozen=True)
class PlainUNetSpec:
    """A small PlainConvUNet: widths per stage, strides, and the patch/spacing it works at."""

    features: tuple[int, ...] = (8, 16, 32, 64)
    strides: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 1))
    patch_size: tuple[int, int, int] = (64, 64, 32)
    spacing: tuple[float, float, float] = (1.5, 1.5, 3.0)
    n_conv_per_stage: int = 2


def arch_block(spec: PlainUNetSpec) -> dict[str, Any]:
    """The plans' ``architecture`` entry for ``spec`` (InstanceNorm + LeakyReLU, as nnU-Net)."""
    n = len(spec.features)
    return {
        "network_class_name": _UNET,
        "arch_kwargs": {
            "n_stages": n,
            "features_per_stage": list(spec.features),
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n,
            "strides": [list(s) for s in spec.strides],
            "n_conv_per_stage": [spec.n_conv_per_stage] * n,
            "n_conv_per_stage_decoder": [spec.n_conv_per_stage] * (n - 1),
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def make_plans(spec: PlainUNetSpec, *, dataset_name: str = "Dataset001_Spine") -> dict[str, Any]:
    """A complete ``plans.json`` dict (z-score normalisation, torch resampling)."""
    resample = {"is_seg": False, "force_separate_z": None}
    config = {
        "data_identifier": f"nnUNetPlans_{CONFIGURATION}",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(spec.patch_size),
        "median_image_size_in_voxels": list(spec.patch_size),
        "spacing": list(spec.spacing),
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_torch_fornnunet",
        "resampling_fn_data_kwargs": resample,
        "resampling_fn_seg": "resample_torch_fornnunet",
        "resampling_fn_seg_kwargs": {**resample, "is_seg": True},
        "resampling_fn_probabilities": "resample_torch_fornnunet",
        "resampling_fn_probabilities_kwargs": resample,
        "architecture": arch_block(spec),
        "batch_dice": False,
    }
    return {
        "dataset_name": dataset_name,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": list(spec.spacing),
        "original_median_shape_after_transp": list(spec.patch_size),
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {
                "max": 1.0,
                "mean": 0.0,
                "median": 0.0,
                "min": 0.0,
                "percentile_00_5": 0.0,
                "percentile_99_5": 1.0,
                "std": 1.0,
            }
        },
        "configurations": {CONFIGURATION: config},
    }


def make_dataset_json(class_names: Sequence[str], *, channel: str = "T2w") -> dict[str, Any]:
    """``dataset.json`` with background 0 and ``class_names`` as 1..K."""
    labels = {"background": 0, **{name: i + 1 for i, name in enumerate(class_names)}}
    return {
        "channel_names": {"0": channel},
        "labels": labels,
        "numTraining": 0,
        "file_ending": ".nii.gz",
    }


def build_network(plans: Mapping[str, Any], n_classes: int) -> torch.nn.Module:
    """The network nnunetv2 would build for these plans (one input channel, no deep supervision)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = plans["configurations"][CONFIGURATION]["architecture"]
    return get_network_from_plans(
        arch["network_class_name"],
        arch["arch_kwargs"],
        arch["_kw_requires_import"],
        1,
        n_classes,
        allow_init=True,
        deep_supervision=False,
    )


def folder_widths(folder: str | Path) -> tuple[int, ...]:
    """Widths per stage of a results folder's network (its ``plans.json``), so a run that
    fine-tunes it can refuse other widths before any work."""
    from spineps_dask.errors import ModelError

    path = Path(folder) / "plans.json"
    try:
        plans = json.loads(path.read_text(encoding="utf-8"))
        arch = plans["configurations"][CONFIGURATION]["architecture"]["arch_kwargs"]
        return tuple(int(w) for w in arch["features_per_stage"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"cannot read {CONFIGURATION}'s stage widths from {path}: {err}") from err


def write_results_folder(
    out: str | Path,
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    fold_weights: Sequence[Mapping[str, torch.Tensor]],
    *,
    mirror_axes: tuple[int, ...] | None = None,
) -> Path:
    """Write ``plans.json``, ``dataset.json`` and ``fold_K/checkpoint_final.pth`` for each fold."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plans.json").write_text(json.dumps(plans, indent=2), encoding="utf-8")
    (out / "dataset.json").write_text(json.dumps(dataset_json, indent=2), encoding="utf-8")
    for k, weights in enumerate(fold_weights):
        ckpt: dict[str, Any] = {
            "network_weights": {n: t.detach().cpu() for n, t in weights.items()},
            "trainer_name": TRAINER,
            "init_args": {"configuration": CONFIGURATION, "fold": k},
        }
        if mirror_axes is not None:
            ckpt["inference_allowed_mirroring_axes"] = list(mirror_axes)
        (out / f"fold_{k}").mkdir(exist_ok=True)
        torch.save(ckpt, out / f"fold_{k}" / "checkpoint_final.pth")
    return out
