"""The labelling model: per-vertebra image patches -> class posteriors (VERIDAH, `spineps` 2.x).

A labelling folder holds an ``inference_config.json`` (``modeltype`` ``classifier``) and a
Lightning checkpoint of the reference's ``PLClassifier`` (``architectures/pl_densenet.py``):
``state_dict`` keys ``net.*`` (a MONAI 3D DenseNet without its last layer) and
``classification_heads.<HEAD>.*`` (per head Linear -> ReLU -> Linear, or one Linear), and
``hyper_parameters`` = ``{"opt": <options>, "group_2_n_channel": {head: classes}}``. The
options say the backbone, the patch size (``final_size``) and, through the training set's name
(``ds_name`` containing ``v4corpus``), whether patches are turned to the spine axis.

The reference unpickles that checkpoint with ``weights_only=False``, which runs whatever code
the file names. Here it is read with ``weights_only=True``: the options object is rebuilt as a
plain attribute holder under the reference's class names, nothing else is allowed
(`load_labeling_checkpoint`).
"""

from __future__ import annotations

import argparse
import logging
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spineps_dask.errors import InputError, ModelError
from spineps_dask.models._densenet import BLOCKS, MIN_EDGE, DenseNet3d
from spineps_dask.models.checkpoint import load_checkpoint, resolve_device
from spineps_dask.models.config import ModelConfig
from spineps_dask.models.folders import load_model_folder
from spineps_dask.pipeline.patches import PatchSettings

logger = logging.getLogger(__name__)

#: The reference's default patch (``lab_model.DEFAULT_CLASSIFIER_INPUT_SIZE``).
DEFAULT_FINAL_SIZE = (152, 168, 32)
#: A training-set name with this in it marks a model trained on turned patches (reference).
ROTATED_MARKER = "v4corpus"
#: Heads this project reads: the 26-class vertebra head (either name the reference uses) and
#: the 3-region head; others (VERTREL, FULLYVISIBLE, ...) are computed and ignored.
VERTEBRA_HEADS = ("VERTEXACT", "VERTEX")
REGION_HEAD = "REGION"


class Options:
    """Plain stand-in for the reference's pickled option classes (attributes only)."""

    def __getattr__(self, name: str) -> Any:  # a missing option reads as None
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def _backbone_name(value: Any) -> str:
    """The reference pickles ``MODEL`` members by value (a MONAI class): map back to a name."""
    return str(getattr(value, "backbone_name", value))


class _MonaiClass:
    """Stand-in for a MONAI network class named inside a pickled ``MODEL`` member."""

    backbone_name = ""


def _monai_stand_in(name: str) -> type:
    return type(name, (_MonaiClass,), {"backbone_name": name.upper()})


def _model_member(value: Any) -> str:
    return _backbone_name(value)


#: The reference's option classes, rebuilt as `Options`; never their code.
_STAND_INS: list[Any] = [
    (Options, "spineps.architectures.pl_densenet.ARGS_MODEL"),
    (Options, "TypeSaveArgParse.Class_to_ArgParse"),
    (_model_member, "spineps.architectures.pl_densenet.MODEL"),
    (_monai_stand_in("DenseNet121"), "monai.networks.nets.densenet.DenseNet121"),
    (_monai_stand_in("DenseNet169"), "monai.networks.nets.densenet.DenseNet169"),
]


def load_labeling_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """Read a labelling checkpoint safely (`_checkpoint.load_checkpoint` + option stand-ins);
    ``mmap``: map the tensors instead of reading them (the check before a run).

    Raises
    ------
    ModelError
        The file holds pickled objects beyond tensors, plain values and the options.
    """
    return load_checkpoint(path, mmap=mmap, extra_globals=_STAND_INS)


def _opt(hp: Mapping[str, Any], key: str, default: Any = None) -> Any:
    opt = hp.get("opt")
    value = opt.get(key) if isinstance(opt, Mapping) else getattr(opt, key, None)
    return default if value is None else value


def _head(n_in: int, n_out: int, *, hidden: bool) -> nn.Sequential:
    if not hidden:
        return nn.Sequential(nn.Linear(n_in, n_out))
    return nn.Sequential(nn.Linear(n_in, n_in // 2), nn.ReLU(), nn.Linear(n_in // 2, n_out))


class LabelingNetwork(nn.Module):
    """DenseNet backbone + one head per target group; the reference ``PLClassifier`` layout.

    ``forward`` maps ``(B, 1, X, Y, Z)`` to ``{head: (B, classes) logits}``.
    """

    def __init__(
        self, heads: Mapping[str, int], *, backbone: str = "DENSENET121", hidden: bool = True
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.net = DenseNet3d(backbone)
        self.classification_heads = nn.ModuleDict(
            {k: _head(self.net.n_features, int(n), hidden=hidden) for k, n in heads.items()}
        )

    @property
    def heads(self) -> dict[str, int]:
        return {k: int(h[-1].out_features) for k, h in self.classification_heads.items()}

    @property
    def hidden(self) -> bool:
        return len(next(iter(self.classification_heads.values()))) > 1

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.net(x)
        return {k: head(features) for k, head in self.classification_heads.items()}


def network_from_checkpoint(
    ckpt: Mapping[str, Any], *, source: str = "checkpoint"
) -> tuple[LabelingNetwork, dict[str, Any]]:
    """Build the network a labelling checkpoint describes, load its weights; also return the
    options this project reads (``final_size``, ``ds_name``, ``backbone``)."""
    hp = ckpt.get("hyper_parameters") or {}
    heads = hp.get("group_2_n_channel")
    if not isinstance(heads, Mapping) or not heads:
        raise ModelError(
            f"{source}: hyper_parameters has no 'group_2_n_channel' (head -> classes); "
            "is this a spineps labelling (PLClassifier) checkpoint?"
        )
    backbone = _backbone_name(_opt(hp, "backbone", "DENSENET169")).upper()
    if backbone not in BLOCKS:
        raise ModelError(
            f"{source}: backbone {backbone!r} is not supported here; supported: {sorted(BLOCKS)}"
        )
    if _opt(hp, "classification_conv", False):
        raise ModelError(f"{source}: heads with a convolution first are not supported")
    if int(_opt(hp, "in_channel", 1)) != 1:
        raise ModelError(f"{source}: in_channel {_opt(hp, 'in_channel')} != 1 (image only)")
    hidden = bool(_opt(hp, "classification_linear", True))
    net = LabelingNetwork(
        {str(k): int(v) for k, v in heads.items()}, backbone=backbone, hidden=hidden
    )
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise ModelError(f"{source}: no 'state_dict' (is this a Lightning checkpoint?)")
    try:
        net.load_state_dict(dict(state), strict=True)
    except RuntimeError as err:
        raise ModelError(
            f"{source}: weights do not fit a {backbone} with heads {dict(heads)}: "
            f"{str(err).splitlines()[0]}"
        ) from err
    size = tuple(int(v) for v in _opt(hp, "final_size", DEFAULT_FINAL_SIZE))
    opts = {"final_size": size, "ds_name": str(_opt(hp, "ds_name", "")), "backbone": backbone}
    return net, opts


def save_labeling_checkpoint(
    path: str | Path,
    network: LabelingNetwork,
    *,
    final_size: tuple[int, int, int],
    rotate: bool,
    training: Mapping[str, Any] | None = None,
    half: bool = True,
) -> Path:
    """Write ``network`` as a checkpoint `spineps` 2.1.3 loads (``PLClassifier``).

    ``half``: store floating-point tensors as float16 (half the file: a DenseNet121 is 11 M
    parameters); loading copies them into the float32 network, here and in `spineps`.
    ``hyper_parameters.opt`` is an ``argparse.Namespace`` with the fields the reference's
    ``PLClassifier`` and ``VertLabelingClassifier`` read; ``ds_name`` carries `ROTATED_MARKER`
    when ``rotate``. ``training``: extra plain values kept under ``opt`` (steps, seed).
    """
    path = Path(path)
    heads = network.heads
    opt = argparse.Namespace(
        backbone=network.backbone,
        classification_conv=False,
        classification_linear=network.hidden,
        in_channel=1,
        not_pretrained=True,
        num_classes=heads.get("VERTEXACT", max(heads.values())),
        mse_weighting=0.0,
        l2_regularization_w=0.0,
        dropout=0.0,
        final_size=list(final_size),
        ds_name=f"phantoms_{ROTATED_MARKER if rotate else 'axisaligned'}",
        **dict(training or {}),
    )
    ckpt = {
        "pytorch-lightning_version": "2.4.0",
        "epoch": 0,
        "global_step": int((training or {}).get("steps", 0)),
        "state_dict": {
            k: v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()
            for k, v in network.state_dict().items()
        },
        "hyper_parameters": {"opt": opt, "group_2_n_channel": dict(heads)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


class LabelingModel:
    """A loaded labelling classifier; ``predict`` maps patches to per-head posteriors.

    Examples
    --------
    >>> model = LabelingModel.from_folder("demo_models/labeling")  # doctest: +SKIP
    >>> model.predict(patches.patches)["VERTEXACT"].shape  # (N, 26) softmax
    """

    def __init__(
        self,
        network: LabelingNetwork,
        patch_settings: PatchSettings,
        config: ModelConfig | None = None,
        *,
        device: str = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.patch_settings = patch_settings
        self.config = config

    @classmethod
    def from_folder(cls, folder: str | Path, *, device: str = "auto") -> LabelingModel:
        """Load a labelling folder (``modeltype`` ``classifier``) safely."""
        mf = load_model_folder(folder, kind="labeling")
        ckpt = load_labeling_checkpoint(mf.weights)
        net, opts = network_from_checkpoint(ckpt, source=str(mf.weights))
        heads = net.heads
        vert = next((h for h in VERTEBRA_HEADS if h in heads), None)
        if vert is None or heads[vert] != 26:
            raise ModelError(
                f"{mf.weights}: needs a 26-class vertebra head ({' or '.join(VERTEBRA_HEADS)}), "
                f"has {heads}; 24-class (VERT) models are not supported"
            )
        size = opts["final_size"]
        if min(size) < MIN_EDGE:
            raise ModelError(f"{mf.weights}: final_size {size} has an edge under {MIN_EDGE}")
        settings = PatchSettings(
            orientation=tuple(mf.config.model_expected_orientation),  # type: ignore[arg-type]
            spacing=tuple(float(v) for v in mf.config.resolution_range),  # type: ignore[arg-type]
            size=size,
            rotate=ROTATED_MARKER in opts["ds_name"],
        )
        logger.info("labelling model %s (%s) on %s", mf.name, opts["backbone"], device)
        return cls(net, settings, mf.config, device=device)

    @property
    def vertebra_head(self) -> str:
        return next(h for h in VERTEBRA_HEADS if h in self.network.heads)

    def predict(self, patches: np.ndarray, *, batch_size: int = 16) -> dict[str, np.ndarray]:
        """Softmax posteriors of every head for ``(N, X, Y, Z)`` float32 patches.

        Returns ``{head: (N, classes) float32}``; N = 0 gives empty arrays.
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 4 or tuple(patches.shape[1:]) != tuple(self.patch_settings.size):
            raise InputError(
                f"labelling patches must be (N, {', '.join(map(str, self.patch_settings.size))})"
                f", got {patches.shape}"
            )
        out: dict[str, list[np.ndarray]] = {k: [] for k in self.network.heads}
        for start in range(0, len(patches), batch_size):
            probs = self._forward(patches[start : start + batch_size])
            for k, v in probs.items():
                out[k].append(v)
        return OrderedDict(
            (k, np.concatenate(v) if v else np.zeros((0, n), np.float32))
            for (k, v), n in zip(out.items(), self.network.heads.values(), strict=True)
        )

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(batch[:, None]).to(self.device)
        logits = self.network(x)
        return {k: torch.softmax(v.float(), dim=1).cpu().numpy() for k, v in logits.items()}
