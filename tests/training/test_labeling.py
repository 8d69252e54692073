"""Training the demo labelling model (a few steps): what `train-demo --which labeling` writes.

Protects: the folder is a labelling model folder in the published layout (one
``inference_config.json`` with ``modeltype`` classifier, a checkpoint the reference's glob
``*val_f1=*valf1-weights.ckpt`` finds) that loads and predicts; its config records the
command, seed, steps and held-out scores, and ``MODEL_CARD.md`` says the same; training views
come in every kind, with targets for every head; a fine-tuning run starts from the given
folder's weights and records which folder (and content version) it started from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spineps_dask.models.config import CONFIG_NAME, load_config
from spineps_dask.models.labeling import LabelingModel
from spineps_dask.pipeline.patches import PatchSettings
from spineps_dask.training.labeling import LabelingTrainConfig, train_labeling
from spineps_dask.training.labeling_data import HEADS, VIEW_MIX, draw_kind, view_sample


def test_view_kinds_and_targets():
    kinds = {draw_kind(300_000 + k) for k in range(60)}
    assert kinds == set(VIEW_MIX)
    s = view_sample(5, "mid_lumbar", PatchSettings())
    assert 26 not in s.ids and 2 not in s.ids  # neither anchor in view
    assert {k: len(v) for k, v in s.targets.items()} == dict.fromkeys(HEADS, len(s.ids))
    assert s.patches.dtype == np.float16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-step training: its config, folder and view cache."""
    root = tmp_path_factory.mktemp("labeling")
    cfg = LabelingTrainConfig(n_train=2, iterations=2, batch=2, heldout_per_kind=1)
    return cfg, train_labeling(root / "labeling", cfg, cache=root / ".cache"), root / ".cache"


@pytest.mark.slow
def test_a_short_training_writes_a_loadable_folder(trained):
    cfg, folder, cache = trained
    assert len(list(folder.glob("*val_f1=*valf1-weights.ckpt"))) == 1
    config = load_config(folder / CONFIG_NAME)
    t = config.training
    assert config.modeltype == "classifier" and t["iterations"] == 2 and t["seed"] == 0
    assert "--which labeling" in t["command"] and t["heldout"]["views"] == len(VIEW_MIX)
    for variant in ("T13", "L6"):  # the per-view-kind split adds up to the total
        by_view = t["heldout"][f"{variant}_by_view"]
        assert set(by_view) <= set(VIEW_MIX)
        for part in (0, 1):
            total = int(t["heldout"][variant].split("/")[part])
            assert sum(int(v.split("/")[part]) for v in by_view.values()) == total
    model = LabelingModel.from_folder(folder, device="cpu")
    assert model.patch_settings.size == cfg.size and model.patch_settings.rotate
    card = (folder / "MODEL_CARD.md").read_text()
    assert t["command"] in card and "Held-out naming" in card
    assert list(cache.glob("labeling-*.npz"))  # views cached for a rerun


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_folder(trained, tmp_path):
    _, start, cache = trained
    tuned = LabelingTrainConfig(
        n_train=2, iterations=0, batch=2, heldout_per_kind=1, init_from=str(start), lr=5e-4
    )
    folder = train_labeling(tmp_path / "tuned", tuned, cache=cache)
    a = LabelingModel.from_folder(start, device="cpu").network.state_dict()
    b = LabelingModel.from_folder(folder, device="cpu").network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # zero steps: the start weights unchanged
    t = load_config(folder / CONFIG_NAME).training
    assert t["initialised_from"] == str(start) and t["initialised_from_version"]
    assert t["command"].endswith(f"--lr 0.0005 --init-from {start}")
