"""A 3D DenseNet with the parameter names of MONAI's ``DenseNet121`` / ``DenseNet169``.

The reference labelling classifier (`spineps` ``architectures/pl_densenet.py``) uses MONAI's
3D DenseNet as its backbone, with the final linear layer removed. This module builds the same
network (Huang et al., "Densely Connected Convolutional Networks", 2017) from plain torch
layers, so published labelling checkpoints load without MONAI installed: the module tree and
the ``state_dict`` keys match MONAI's (``features.conv0``, ``features.denseblockK.denselayerJ.
layers.{norm1,conv1,norm2,conv2}``, ``features.transitionK.{norm,conv}``, ``features.norm5``);
``class_layers`` (ReLU, global average pool, flatten) has no parameters.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

#: Layers per dense block of the variants the reference may name (``opt.backbone``).
BLOCKS: dict[str, tuple[int, ...]] = {
    "DENSENET121": (6, 12, 24, 16),
    "DENSENET169": (6, 12, 32, 32),
}
#: MONAI's defaults, which the reference does not change.
INIT_FEATURES, GROWTH, BN_SIZE = 64, 32, 4
#: The smallest input edge the network takes: a stride-2 stem, a stride-2 max pool and three
#: 2x average pools leave one voxel of a 32-voxel edge.
MIN_EDGE = 32


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) then BN-ReLU-3x3 conv; output concatenated to the input."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        mid = BN_SIZE * GROWTH
        self.layers = nn.Sequential(
            OrderedDict(
                [
                    ("norm1", nn.BatchNorm3d(in_channels)),
                    ("relu1", nn.ReLU(inplace=True)),
                    ("conv1", nn.Conv3d(in_channels, mid, kernel_size=1, bias=False)),
                    ("norm2", nn.BatchNorm3d(mid)),
                    ("relu2", nn.ReLU(inplace=True)),
                    ("conv2", nn.Conv3d(mid, GROWTH, kernel_size=3, padding=1, bias=False)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], 1)


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("norm", nn.BatchNorm3d(in_channels)),
                ("relu", nn.ReLU(inplace=True)),
                ("conv", nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=False)),
                ("pool", nn.AvgPool3d(kernel_size=2, stride=2)),
            ]
        )
    )


class DenseNet3d(nn.Module):
    """3D DenseNet feature extractor: ``(B, C, X, Y, Z)`` -> ``(B, features)``.

    Parameters
    ----------
    variant
        ``'DENSENET121'`` or ``'DENSENET169'`` (`BLOCKS`).
    in_channels
        Input channels (the reference feeds the image alone: 1).

    Examples
    --------
    >>> net = DenseNet3d("DENSENET121")
    >>> net.n_features
    1024
    """

    def __init__(self, variant: str = "DENSENET121", *, in_channels: int = 1) -> None:
        super().__init__()
        stem: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv3d(in_channels, INIT_FEATURES, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm3d(INIT_FEATURES)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool3d(kernel_size=3, stride=2, padding=1)),
        ]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = INIT_FEATURES
        blocks = BLOCKS[variant]
        for i, n_layers in enumerate(blocks, start=1):
            block = nn.Sequential()
            for j in range(n_layers):
                block.add_module(f"denselayer{j + 1}", _DenseLayer(channels + j * GROWTH))
            self.features.add_module(f"denseblock{i}", block)
            channels += n_layers * GROWTH
            if i < len(blocks):
                self.features.add_module(f"transition{i}", _transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm3d(channels))
        self.class_layers = nn.Sequential(
            OrderedDict(
                [
                    ("relu", nn.ReLU(inplace=True)),
                    ("pool", nn.AdaptiveAvgPool3d(1)),
                    ("flatten", nn.Flatten(1)),
                ]
            )
        )
        self.n_features = channels
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_layers(self.features(x))
