"""Tiny user models for `workbench profile package.module:factory` tests (imported as tiny_factory:...)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """forward(image (B, 3, 16, 16)) -> (B, 5): conv 3->8 (3x3, pad 1), ReLU, flatten, Linear 2048->5.

    MACs at batch 1, closed form: conv 16*16*8*3*9 = 55,296; linear 8*16*16*5 = 10,240; total 65,536.
    The Linear fixes the input size: any other size is rejected.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8 * 16 * 16, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(image)).flatten(1))


TINY_MACS = 16 * 16 * 8 * 3 * 9 + 8 * 16 * 16 * 5


def build() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet()


def not_a_module() -> int:
    return 3


def broken() -> nn.Module:
    raise RuntimeError("cannot build: weights missing")
