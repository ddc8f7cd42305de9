"""Building blocks shared by the students: a depthwise-separable CNN trunk that int8 quantizes well.

ReLU (not ReLU6) after every BatchNorm: onnxruntime folds BN into the conv and fuses Conv+ReLU in both
fp32 and int8 graphs, so each block exports to two fused convs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConvBN", "DSConv", "TinyTrunk", "out_size"]


class ConvBN(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU, "same" padding: (B, in, H, W) -> (B, out, ceil(H/s), ceil(W/s))."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class DSConv(nn.Sequential):
    """Depthwise 3x3 (stride s) + pointwise 1x1, each with BN and ReLU (MobileNetV1's block).

    (B, in, H, W) -> (B, out, ceil(H/s), ceil(W/s)); about 9*in + in*out MACs per output pixel, against
    9*in*out for a full 3x3 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__(ConvBN(in_ch, in_ch, 3, stride, groups=in_ch), ConvBN(in_ch, out_ch, 1))


def out_size(size: int, strides: Sequence[int]) -> int:
    """Spatial size after a stride-2 stem and ``strides`` (padding 1, 3x3: ceil halving per stride 2)."""
    for s in (2, *strides):
        size = (size + s - 1) // s
    return size


class TinyTrunk(nn.Module):
    """A stride-2 3x3 stem then depthwise-separable blocks: (B, in_chans, H, W) -> (B, widths[-1], h, w).

    ``features`` is one ``nn.Sequential`` (``features.0`` the stem, ``features.k`` block k), so hint
    layers and pruning address blocks by index; ``stride`` is the total downsampling.
    """

    def __init__(self, in_chans: int, stem: int, widths: Sequence[int], strides: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError(f"expected one stride per width, got {len(widths)} widths and {len(strides)} strides")
        if any(s not in (1, 2) for s in strides):
            raise ValueError(f"strides must be 1 or 2, got {list(strides)}")
        layers: list[nn.Module] = [ConvBN(in_chans, stem, 3, 2)]
        ch = stem
        for w, s in zip(widths, strides):
            layers.append(DSConv(ch, w, s))
            ch = w
        self.features = nn.Sequential(*layers)
        self.out_channels = ch
        self.stride = 2 * math.prod(strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, out_channels, ceil(H/stride), ceil(W/stride))."""
        return self.features(x)
