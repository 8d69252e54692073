"""The instance U-Net: reference state_dict layout, safe loading, batched prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spineps_dask.errors import InputError, ModelError
from spineps_dask.models.instance import InstanceModel, save_checkpoint
from spineps_dask.models.unet3d import Unet3D


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_legacy_size_matches_reference_layout() -> None:
    """Base width 16, 10 channels: 182 tensors, 5 375 124 parameters (reference checkpoints)."""
    net = Unet3D(16, channels=10)
    state = net.state_dict()
    assert len(state) == 182
    assert _n_params(net) == 5_375_124
    for key in (
        "init_conv.weight",
        "downs.0.0.block1.proj.weight",
        "downs.2.1.block2.norm.bias",
        "downs.1.0.res_conv.weight",
        "downs.0.2.weight",
        "mid_block1.block1.proj.weight",
        "mid_block2.block2.norm.weight",
        "ups.0.0.res_conv.weight",
        "ups.1.2.weight",
        "final_res_block.res_conv.weight",
        "final_conv.weight",
    ):
        assert key in state, key
    assert state["init_conv.weight"].shape == (16, 10, 7, 7, 7)
    assert state["final_conv.weight"].shape == (4, 16, 1, 1, 1)


def test_small_size_parameter_count() -> None:
    """dim 8 with 11 channels: 1 361 924 parameters (reference figure)."""
    assert _n_params(Unet3D(8, channels=11)) == 1_361_924


def test_lightning_checkpoint_round_trip(tmp_path: Path, tiny_instance: Path) -> None:
    """A checkpoint in the reference layout loads without key errors and predicts identically."""
    ckpt = torch.load(tiny_instance / "instance_weights.ckpt", weights_only=True)
    assert "pytorch-lightning_version" in ckpt
    assert all(k.startswith("network.") for k in ckpt["state_dict"])
    hp = ckpt["hyper_parameters"]
    for key in ("channelwise", "n_epoch", "lr", "lr_end_factor", "l2_reg_w", "dsc_loss_w"):
        assert key in hp
    assert (hp["dim"], hp["num_channels"]) == (8, 10)
    model = InstanceModel.from_folder(tiny_instance, device="cpu")
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 10, size=(3, 16, 24, 8), dtype=np.uint8)
    out = model.predict(batch, batch_size=2)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1, 2, 3}
    with torch.no_grad():
        ref = model.logits(batch).argmax(1).numpy()
    np.testing.assert_array_equal(out, ref)


def _folder_with(tmp_path: Path, tiny_instance: Path, ckpt: dict, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "inference_config.json").write_bytes(
        (tiny_instance / "inference_config.json").read_bytes()
    )
    torch.save(ckpt, folder / "x_weights.ckpt")
    return folder


def test_the_weights_say_the_size(tmp_path: Path, tiny_instance: Path) -> None:
    """The legacy PLNet stores no size, the newer one only ``opt`` (published CT_instance):
    the size comes from the weights; hyper-parameters that contradict them are refused."""
    import argparse

    ckpt = torch.load(tiny_instance / "instance_weights.ckpt", weights_only=True)
    del ckpt["hyper_parameters"]
    model = InstanceModel.from_folder(_folder_with(tmp_path, tiny_instance, ckpt, "bare"))
    assert (model.network.init_conv.out_channels, model.n_channels) == (8, 10)
    ckpt["hyper_parameters"] = {"opt": argparse.Namespace(channelwise=True, dim=8), "do2D": False}
    InstanceModel.from_folder(_folder_with(tmp_path, tiny_instance, ckpt, "opt"), device="cpu")
    ckpt["hyper_parameters"] = {"dim": 16, "num_channels": 10}
    with pytest.raises(ModelError, match=r"say dim=16 but the weights have 8"):
        InstanceModel.from_folder(_folder_with(tmp_path, tiny_instance, ckpt, "bad"))


def test_mapping_may_leave_channels_unused_not_overflow(tmp_path: Path) -> None:
    """An 11-channel network with the default mapping (10 channels) loads, as in the reference
    (one-hot to the network's width); a network narrower than the mapping is refused."""
    from tests.models.conftest import write_tiny_instance

    wide = InstanceModel.from_folder(write_tiny_instance(tmp_path / "w", channels=11))
    assert wide.n_channels == 11
    out = wide.predict(np.full((1, 8, 8, 8), 9, np.uint8))
    assert out.shape == (1, 8, 8, 8)
    with pytest.raises(ModelError, match="has 9 input channels but the config's mapping needs 10"):
        InstanceModel.from_folder(write_tiny_instance(tmp_path / "n", channels=9))


class _Payload:
    """Stands for any class a malicious checkpoint could smuggle in."""


def test_checkpoint_with_pickled_object_is_refused(tmp_path: Path, tiny_instance: Path) -> None:
    """weights_only loading refuses arbitrary pickled objects with ModelError."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "inference_config.json").write_bytes(
        (tiny_instance / "inference_config.json").read_bytes()
    )
    ckpt = torch.load(tiny_instance / "instance_weights.ckpt", weights_only=True)
    ckpt["callbacks"] = _Payload()
    torch.save(ckpt, folder / "evil_weights.ckpt")
    with pytest.raises(ModelError, match=r"refusing to load .*pickled objects"):
        InstanceModel.from_folder(folder, device="cpu")


def test_bad_inputs_are_input_errors(tiny_instance: Path) -> None:
    """Shapes not divisible by 8 and ids beyond the channel count are refused."""
    model = InstanceModel.from_folder(tiny_instance, device="cpu")
    with pytest.raises(InputError, match="divisible by 8"):
        model.predict(np.zeros((1, 16, 20, 8), np.uint8))
    with pytest.raises(InputError, match=r"0\.\.9"):
        model.predict(np.full((1, 8, 8, 8), 10, np.uint8))


def test_saved_hyper_parameters_rebuild_the_same_size(tmp_path: Path) -> None:
    """save_checkpoint records dim and channels, so an 11-channel net comes back as 11 channels."""
    from spineps_dask.models.checkpoint import load_checkpoint
    from spineps_dask.models.instance import network_from_checkpoint

    net = Unet3D(8, channels=11)
    path = save_checkpoint(tmp_path / "w_weights.ckpt", net, n_epoch=3)
    back = network_from_checkpoint(load_checkpoint(path))
    assert back.channels == 11 and _n_params(back) == 1_361_924
