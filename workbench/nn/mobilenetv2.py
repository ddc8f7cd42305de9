"""MobileNetV2 in plain PyTorch, laid out exactly like torchvision's.

The module tree (and therefore every ``state_dict`` key) mirrors
``torchvision.models.mobilenet_v2`` so that torchvision checkpoints load
without renaming: ``features.0.0.weight``, ``features.1.conv.0.0.weight``,
``features.18.0.weight``, ``classifier.1.weight``, ...
torchvision itself is deliberately not imported.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = [
    "ConvBNReLU",
    "InvertedResidual",
    "MobileNetV2",
    "make_divisible",
    "mobilenet_v2",
    "mobilenet_v2_trunk",
]

# (expand ratio t, output channels c, repeats n, first stride s), from the paper
# and torchvision; the block indices in ``features`` follow from this table.
_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int, min_value: Optional[int] = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (torchvision's ``_make_divisible``).

    Rounds to the nearest multiple, but never goes more than 10% below ``v`` so
    that small width multipliers do not silently remove most of a layer.
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU6 with "same" padding.

    Same child indices as torchvision's ``Conv2dNormActivation`` (``0`` conv,
    ``1`` BN, ``2`` activation) so state-dict keys match.
    Input (B, in_ch, H, W) -> output (B, out_ch, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            # No bias: the following BN has its own shift, a bias would be redundant.
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = out_ch


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual block with torchvision's ``.conv`` layout.

    ``conv`` is ``[ConvBNReLU 1x1 expand]`` (absent when ``expand_ratio == 1``),
    ``ConvBNReLU 3x3 depthwise``, ``Conv2d 1x1 project``, ``BatchNorm2d``.
    Input (B, in_ch, H, W) -> output (B, out_ch, H/stride, W/stride).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        hidden_dim = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch

        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_ch, hidden_dim, kernel_size=1))
        layers.extend(
            [
                ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                # Linear bottleneck: no activation after the projection (the
                # paper's point: ReLU in a low-dim space destroys information).
                nn.Conv2d(hidden_dim, out_ch, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out_ch),
            ]
        )
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H/stride, W/stride)."""
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) with torchvision's module names.

    Args:
        width_mult: channel multiplier; channel counts are rounded with
            :func:`make_divisible` to ``round_nearest``.
        in_chans: input image channels (1 for grey eye crops).
        num_classes: classifier outputs; ``0`` builds no classifier at all
            (``self.classifier is None``) and ``forward`` returns pooled features.
        round_nearest: channel rounding multiple (8 as in torchvision).
        dropout: dropout before the final Linear (torchvision default 0.2).
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        in_chans: int = 3,
        num_classes: int = 1000,
        round_nearest: int = 8,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        input_channel = make_divisible(32 * width_mult, round_nearest)
        # The last layer is never narrowed below 1280: torchvision keeps the
        # head wide for width_mult < 1 because it is cheap at 7x7 resolution.
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        self.out_features = self.last_channel
        self.in_chans = in_chans
        self.num_classes = num_classes

        features: list[nn.Module] = [ConvBNReLU(in_chans, input_channel, stride=2)]
        for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(
                    InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t)
                )
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)

        # Sequential(Dropout, Linear) so the Linear is ``classifier.1`` as in torchvision.
        self.classifier: Optional[nn.Sequential] = None
        if num_classes > 0:
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes)
            )

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> feature map (B, out_features, H/32, W/32) (ceil-rounded)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> logits (B, num_classes), or (B, out_features) when num_classes=0."""
        x = self.forward_features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        if self.classifier is not None:
            x = self.classifier(x)
        return x


def mobilenet_v2(
    *, width_mult: float = 1.0, in_chans: int = 3, num_classes: int = 1000
) -> MobileNetV2:
    """Build a torchvision-compatible MobileNetV2; input (B, in_chans, H, W)."""
    return MobileNetV2(width_mult=width_mult, in_chans=in_chans, num_classes=num_classes)


def mobilenet_v2_trunk(*, width_mult: float, out_channels: int) -> nn.Sequential:
    """MobileNetV2 ``features[0..17]`` with the last block (``features.18``) replaced by a 1x1
    ConvBNReLU to ``out_channels`` (the full-face gaze write-up's trunk); (B, 3, H, W) -> (B, C, H/32, W/32)."""
    trunk = mobilenet_v2(width_mult=width_mult, num_classes=0)
    last_in = make_divisible(320 * width_mult, 8)
    return nn.Sequential(*list(trunk.features)[:18], ConvBNReLU(last_in, out_channels, kernel_size=1))
