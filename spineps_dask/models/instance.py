"""The instance model: per-vertebra cutouts of the semantic mask -> above / centre / below.

Loads the reference's Lightning checkpoints (``*weights*.ckpt``) without executing pickled code
and runs batched forward passes on NumPy arrays, so Dask workers can hold one instance each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineps_dask.errors import InputError, ModelError
from spineps_dask.models.checkpoint import load_checkpoint, resolve_device
from spineps_dask.models.config import ModelConfig
from spineps_dask.models.folders import load_model_folder
from spineps_dask.models.unet3d import Unet3D

logger = logging.getLogger(__name__)

N_CLASSES = 4  # background, vertebra above, centre vertebra, vertebra below
PREFIX = "network."


def network_from_checkpoint(ckpt: dict[str, Any], *, source: str = "checkpoint") -> Unet3D:
    """Build the :class:`Unet3D` a Lightning checkpoint describes and load its weights.

    The size is read from the weights (``network.init_conv.weight``: ``(dim, channels, 7, 7,
    7)``), not from ``hyper_parameters``: published checkpoints describe it three ways. The
    legacy ``PLNet`` (``instance_sagittal``) stores no size (16 wide, 10 channels); the newer
    one (``architectures_new``, e.g. ``CT_instance``) keeps ``hyper_parameters`` =
    ``{"opt": Namespace(channelwise=...), "do2D": False}`` and builds 8 wide with 11 channels
    by default; checkpoints written by `save_checkpoint` name ``dim`` and ``num_channels``.
    `spineps` 2.1.3 tries the legacy network and falls back to the new one when the weights do
    not fit; the weights' shapes say the same directly. A size the hyper-parameters state and
    the weights contradict is refused.
    """
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise ModelError(f"{source}: no 'state_dict' (is this a Lightning checkpoint?)")
    weights = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    if not weights:
        raise ModelError(f"{source}: no state_dict key starts with {PREFIX!r}")
    first = weights.get("init_conv.weight")
    if not isinstance(first, torch.Tensor) or first.ndim != 5:
        raise ModelError(
            f"{source}: no 5-D '{PREFIX}init_conv.weight' (is this the reference's instance U-Net?)"
        )
    dim, channels = int(first.shape[0]), int(first.shape[1])
    stated = _stated_size(ckpt.get("hyper_parameters"))
    for key, value in (("dim", dim), ("num_channels", channels)):
        if key in stated and stated[key] != value:
            raise ModelError(
                f"{source}: hyper_parameters say {key}={stated[key]} but the weights have "
                f"{value}; the checkpoint contradicts itself"
            )
    if channels == 1:
        raise ModelError(
            f"{source}: a single-channel instance network (channelwise=False) is not supported; "
            "the reference feeds the one-hot mapped labels (channelwise=True)"
        )
    net = Unet3D(dim, out_dim=N_CLASSES, channels=channels)
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ModelError(
            f"{source}: weights do not fit Unet3D(dim={dim}, channels={channels}): "
            f"{str(err).splitlines()[0]}"
        ) from err
    return net


def _stated_size(hp: Any) -> dict[str, int]:
    """``dim`` / ``num_channels`` as a checkpoint's hyper-parameters state them, at the top
    (keyword form) or inside ``opt``; empty when they say nothing."""
    if not isinstance(hp, dict):
        return {}
    opt = hp.get("opt")
    out = {}
    for key in ("dim", "num_channels"):
        value = hp.get(key, getattr(opt, key, None) if opt is not None else None)
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
    return out


def save_checkpoint(
    path: str | Path,
    network: Unet3D,
    *,
    n_epoch: int = 0,
    lr: float = 1e-4,
    lr_end_factor: float = 0.01,
    l2_reg_w: float = 1e-4,
    dsc_loss_w: float = 1.0,
) -> Path:
    """Write ``network`` as a Lightning-style checkpoint in the reference layout.

    ``state_dict`` keys get the ``network.`` prefix; ``hyper_parameters`` carries every key the
    reference needs for a non-legacy size (``shared/docs/spineps-reference.md``).
    """
    path = Path(path)
    dim = int(network.init_conv.out_channels)
    ckpt = {
        "pytorch-lightning_version": "2.4.0",
        "epoch": n_epoch,
        "global_step": 0,
        "state_dict": {PREFIX + k: v.detach().cpu() for k, v in network.state_dict().items()},
        "hyper_parameters": {
            "channelwise": True,
            "n_epoch": n_epoch,
            "lr": lr,
            "lr_end_factor": lr_end_factor,
            "l2_reg_w": l2_reg_w,
            "dsc_loss_w": dsc_loss_w,
            "num_channels": int(network.channels),
            "dim": dim,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


class InstanceModel:
    """A loaded instance U-Net; ``predict`` maps cutout batches to 4-class masks.

    Examples
    --------
    >>> model = InstanceModel.from_folder("demo_models/instance")  # doctest: +SKIP
    >>> model.predict(cutouts)  # (B, X, Y, Z) uint8 in 0..C-1 -> (B, X, Y, Z) uint8 in 0..3
    """

    def __init__(
        self, network: Unet3D, config: ModelConfig | None = None, *, device: str = "auto"
    ) -> None:
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.config = config

    @classmethod
    def from_folder(cls, folder: str | Path, *, device: str = "auto") -> InstanceModel:
        """Load the single ``*weights*.ckpt`` of an instance model folder."""
        model_folder = load_model_folder(folder, kind="instance")
        ckpt = load_checkpoint(model_folder.weights)
        net = network_from_checkpoint(ckpt, source=str(model_folder.weights))
        # The reference one-hot encodes to the network's width: a mapping may leave channels
        # unused (the 11-channel network with the default 10-channel mapping), not overflow.
        if net.channels < model_folder.config.n_input_channels:
            raise ModelError(
                f"{folder}: network has {net.channels} input channels but the config's mapping "
                f"needs {model_folder.config.n_input_channels}; fix 'mapping' or the checkpoint"
            )
        logger.info("instance model %s on %s", model_folder.name, resolve_device(device))
        return cls(net, model_folder.config, device=device)

    @property
    def n_channels(self) -> int:
        return int(self.network.channels)

    def predict(self, batch: np.ndarray, *, batch_size: int = 4) -> np.ndarray:
        """Classify every voxel of each cutout as background / above / centre / below.

        Parameters
        ----------
        batch
            ``(B, X, Y, Z)`` integer array of mapped label ids ``0..C-1`` (C = input channels);
            each spatial size divisible by 8.
        batch_size
            Cutouts per forward pass (reference: 4).

        Returns
        -------
        np.ndarray
            ``(B, X, Y, Z)`` uint8: 0 background, 1 vertebra above, 2 centre, 3 below.
        """
        batch = self._check_batch(batch)
        out = np.zeros(batch.shape, dtype=np.uint8)
        for start in range(0, len(batch), batch_size):
            out[start : start + batch_size] = self._forward(batch[start : start + batch_size])
        return out

    def logits(self, batch: np.ndarray) -> torch.Tensor:
        """Raw logits ``(B, 4, X, Y, Z)`` float32 on the model's device (for training/tests)."""
        x = _one_hot(torch.from_numpy(self._check_batch(batch)).to(self.device), self.n_channels)
        return self.network(x)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        x = _one_hot(torch.from_numpy(batch).to(self.device), self.n_channels)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                logits = self.network(x)
        else:
            logits = self.network(x)
        return logits.argmax(dim=1).to(torch.uint8).cpu().numpy()

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.ndim != 4:
            raise InputError(f"instance input must be (B, X, Y, Z), got shape {batch.shape}")
        factor = self.network.down_factor
        if any(s % factor for s in batch.shape[1:]):
            raise InputError(
                f"cutout shape {batch.shape[1:]} must be divisible by {factor} on every axis"
            )
        if batch.size and (batch.min() < 0 or batch.max() >= self.n_channels):
            raise InputError(
                f"instance input ids must lie in 0..{self.n_channels - 1}, got "
                f"{batch.min()}..{batch.max()}; map semantic labels with the config's 'mapping'"
            )
        return batch.astype(np.int64, copy=False)


def _one_hot(ids: torch.Tensor, n_channels: int) -> torch.Tensor:
    """``(B, X, Y, Z)`` int64 -> ``(B, C, X, Y, Z)`` float32 one-hot (reference input)."""
    return torch.nn.functional.one_hot(ids, n_channels).permute(0, 4, 1, 2, 3).float()
