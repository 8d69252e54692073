"""Model folders and the two SPINEPS models (semantic nnU-Net, instance U-Net)."""

from spineps_dask.models.config import ModelConfig, load_config, models_root, parse_config
from spineps_dask.models.folders import (
    ModelFolder,
    check_model_folder,
    demo_model,
    find_model,
    load_model_folder,
    scan_models,
)

__all__ = [
    "ModelConfig",
    "ModelFolder",
    "check_model_folder",
    "demo_model",
    "find_model",
    "load_config",
    "load_model_folder",
    "models_root",
    "parse_config",
    "scan_models",
]
