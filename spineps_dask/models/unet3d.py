"""The residual 3D U-Net of the SPINEPS instance phase, with the reference's state_dict layout.

Attribute names (``init_conv``, ``downs.I.J.block1.proj``, ``mid_block1``, ``ups``,
``final_res_block``, ``final_conv``) are fixed by the published checkpoints
(``shared/docs/spineps-reference.md``, last section); renaming any of them breaks loading.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

#: GroupNorm groups in every block (reference: 8).
GROUPS = 8


class ConvNormAct(nn.Module):
    """Conv3d k3 -> GroupNorm(8) -> LeakyReLU; keys ``proj``, ``norm``."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(dim_in, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(GROUPS, dim_out)
        self.act = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.proj(x)))


class ResidualBlock(nn.Module):
    """Two :class:`ConvNormAct` + 1x1 shortcut if widths differ (keys block1/2, res_conv)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.block1 = ConvNormAct(dim_in, dim_out)
        self.block2 = ConvNormAct(dim_out, dim_out)
        self.res_conv: nn.Module = (
            nn.Conv3d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.block1(x)) + self.res_conv(x)


class Unet3D(nn.Module):
    """Residual 3D U-Net: ``(B, channels, X, Y, Z)`` -> ``(B, out_dim, X, Y, Z)`` logits.

    Each spatial size must be divisible by ``2 ** (len(dim_mults) - 1)`` (8 for the default),
    because the last level does not down-sample.
    """

    def __init__(
        self,
        dim: int,
        *,
        dim_mults: tuple[int, ...] = (1, 2, 4, 8),
        out_dim: int = 4,
        channels: int = 10,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.out_dim = out_dim
        self.init_conv = nn.Conv3d(channels, dim, 7, padding=3)
        dims = [dim, *(dim * m for m in dim_mults)]
        pairs = list(itertools.pairwise(dims))
        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            down = nn.Identity() if last else nn.Conv3d(d_out, d_out, 4, 2, 1)
            self.downs.append(
                nn.ModuleList([ResidualBlock(d_in, d_out), ResidualBlock(d_out, d_out), down])
            )
        self.mid_block1 = ResidualBlock(dims[-1], dims[-1])
        self.mid_block2 = ResidualBlock(dims[-1], dims[-1])
        self.ups = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(reversed(pairs)):
            last = i == len(pairs) - 1
            up = nn.Identity() if last else nn.ConvTranspose3d(d_in, d_in, 4, 2, 1)
            self.ups.append(
                nn.ModuleList([ResidualBlock(d_out, d_in), ResidualBlock(d_in, d_in), up])
            )
        self.final_res_block = ResidualBlock(dim * 2, dim)
        self.final_conv = nn.Conv3d(dim, out_dim, 1)
        self.down_factor = 2 ** (len(dim_mults) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.init_conv(x)
        first = x
        skips = []
        for block1, block2, down in self.downs:
            x = block2(block1(x))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_block1(x))
        for block1, block2, up in self.ups:
            # Skips are averaged, not concatenated (reference layout: 0.5 * (x + skip)).
            x = up(block2(block1(0.5 * (x + skips.pop()))))
        return self.final_conv(self.final_res_block(torch.cat((x, first), dim=1)))
