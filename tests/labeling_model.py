"""A labelling model folder for tests that must not hang on the shipped demo model's weights.

An untrained DenseNet121 classifier (seeded) in the published layout, written as
``train-demo --which labeling`` writes its folder: the tests of model naming (the ``label``
task, the naming sweep, ``segment --labeling-model``) name it explicitly, so they test the
paths, not one set of trained weights. Its names are not meant to be right, only made the same
way on every path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Bump when the folder's content changes: the cached copy is then built again.
VERSION = "1"


def labeling_folder(root: str | os.PathLike | None = None) -> Path:
    """The test labelling folder, built once per machine (under the temp folder) and reused;
    ``root``: build it there instead."""
    import torch

    from spineps_dask.models.config import write_config
    from spineps_dask.models.labeling import LabelingNetwork, save_labeling_checkpoint
    from spineps_dask.training.labeling import LabelingTrainConfig, labeling_config
    from spineps_dask.training.labeling_data import HEADS

    base = Path(root) if root is not None else Path(tempfile.gettempdir()) / "spineps-dask-tests"
    folder = base / f"labeling-v{VERSION}"
    if (folder / "inference_config.json").is_file():
        return folder
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".labeling-", dir=base))
    cfg = LabelingTrainConfig()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = LabelingNetwork(HEADS).eval()
    save_labeling_checkpoint(
        tmp / "test-labeling_val_f1=0.5000valf1-weights.ckpt",
        net,
        final_size=cfg.size,
        rotate=cfg.rotate,
    )
    write_config(tmp, labeling_config(cfg, {"trained_by": "tests/labeling_model.py (untrained)"}))
    try:
        tmp.rename(folder)  # whole or not at all: another process may have built it meanwhile
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
