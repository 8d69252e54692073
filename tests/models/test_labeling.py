"""The labelling model: published folder layout, safe loading, real inference.

Protects: the network has exactly the parameter names and shapes of the reference's
``PLClassifier`` with a MONAI DenseNet121 (so `spineps` loads our checkpoints and we load
its); the reference's pickled options (``ARGS_MODEL``) load without running its code, while a
checkpoint naming any other class is refused; a labelling folder in the published layout (the
tests' own, untrained, until a demo labelling model is shipped) loads, passes the run's weight
check, and gives posteriors for every head; a saved checkpoint loads back to the same
outputs; patches of the wrong size are refused with the size the model wants.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spineps_dask.errors import InputError, ModelError
from spineps_dask.models.config import CONFIG_NAME, load_config
from spineps_dask.models.folders import check_weights
from spineps_dask.models.labeling import (
    LabelingModel,
    LabelingNetwork,
    load_labeling_checkpoint,
    network_from_checkpoint,
    save_labeling_checkpoint,
)
from tests.labeling_model import labeling_folder

DATA = Path(__file__).parent / "data"
HEADS = {"VERTEXACT": 26, "REGION": 3, "VERTREL": 6}


@pytest.fixture(scope="module")
def folder():
    return labeling_folder()


@pytest.fixture(scope="module")
def demo(folder):
    return LabelingModel.from_folder(folder, device="cpu")


def test_parameter_layout_is_the_reference_one():
    """Keys and shapes captured from spineps 2.1.3's PLClassifier (MONAI 1.6.1 DenseNet121)."""
    reference = json.loads((DATA / "reference_plclassifier_densenet121_keys.json").read_text())
    ours = {k: list(v.shape) for k, v in LabelingNetwork(HEADS).state_dict().items()}
    assert ours == reference


def test_reference_options_load_as_plain_attributes():
    """The reference pickles its ARGS_MODEL dataclass; it comes back as attributes only."""
    ckpt = load_labeling_checkpoint(DATA / "reference_labeling_hparams.ckpt")
    hp = ckpt["hyper_parameters"]
    opt = hp["opt"]
    assert type(opt).__module__ == "spineps_dask.models.labeling"
    assert opt.backbone == "DENSENET121" and list(opt.final_size) == [152, 168, 32]
    assert "v4corpus" in opt.ds_name and hp["group_2_n_channel"] == HEADS


class _Evil:
    def __reduce__(self):
        return (print, ("this ran",))


def test_foreign_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "x_val_f1=0.9valf1-weights.ckpt"
    torch.save({"hyper_parameters": {"opt": _Evil()}, "state_dict": {}}, path)
    with pytest.raises(ModelError, match="refusing to load"):
        load_labeling_checkpoint(path)


def test_a_labeling_folder_predicts_every_head(demo, folder):
    config = load_config(folder / CONFIG_NAME)
    assert config.kind == "labeling"
    assert list(folder.glob("*val_f1=*valf1-weights.ckpt"))
    assert check_weights(folder).kind == "labeling"  # what a run checks before it starts
    size = demo.patch_settings.size
    x = np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)
    post = demo.predict(x)
    assert {k: v.shape for k, v in post.items()} == {k: (3, n) for k, n in HEADS.items()}
    for v in post.values():
        np.testing.assert_allclose(v.sum(1), 1.0, rtol=1e-5)
    assert demo.vertebra_head == "VERTEXACT"
    assert demo.predict(np.zeros((0, *size), np.float32))["VERTEXACT"].shape == (0, 26)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = LabelingNetwork(HEADS).eval()
    path = save_labeling_checkpoint(
        tmp_path / "m_val_f1=0.5000valf1-weights.ckpt", net, final_size=(32, 32, 32), rotate=False
    )
    back, opts = network_from_checkpoint(load_labeling_checkpoint(path))
    assert opts["final_size"] == (32, 32, 32) and opts["backbone"] == "DENSENET121"
    assert "v4corpus" not in opts["ds_name"]  # not turned: the reference must not turn either
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.inference_mode():
        a, b = net(x), back.eval()(x)
    for k in HEADS:  # weights stored as float16: close, not equal
        torch.testing.assert_close(a[k], b[k], atol=2e-2, rtol=2e-2)


def test_wrong_patch_size_is_refused(demo):
    with pytest.raises(InputError, match=r"\(N, 32, 64, 32\)"):
        demo.predict(np.zeros((1, 16, 16, 16), np.float32))


def test_checkpoint_without_heads_is_refused(tmp_path):
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, path)
    with pytest.raises(ModelError, match="group_2_n_channel"):
        network_from_checkpoint(load_labeling_checkpoint(path))
