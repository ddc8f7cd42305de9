"""ResNet / ResNeXt in plain PyTorch, laid out exactly like torchvision's.

Attribute names match ``torchvision.models.resnet`` (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``) so torchvision
checkpoints load by key. Two additions over torchvision: ``in_chans`` (grey
eye images) and ``widths`` / ``stem_width`` to build narrower "cpu" variants
of the same family (the defaults reproduce torchvision exactly).
"""

from __future__ import annotations

from typing import Optional, Sequence, Type, Union

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
]

DEFAULT_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 conv, padding=dilation, no bias (BN follows). (B,in_ch,H,W) -> (B,out_ch,H/stride,W/stride)."""
    return nn.Conv2d(
        in_ch, out_ch, kernel_size=3, stride=stride, padding=dilation,
        groups=groups, bias=False, dilation=dilation,
    )


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv, no bias. (B,in_ch,H,W) -> (B,out_ch,H/stride,W/stride)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with identity/projection shortcut (ResNet-18/34).

    (B, in_ch, H, W) -> (B, planes, H/stride, W/stride).
    """

    expansion: int = 1

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("dilation > 1 is not supported in BasicBlock")
        self.conv1 = conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) -> (B, planes, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand (x4), torchvision "v1.5".

    The stride sits on the 3x3 conv as in torchvision (not on the first 1x1 as
    in the original paper), which is what the released weights expect.
    (B, in_ch, H, W) -> (B, planes*4, H/stride, W/stride).
    """

    expansion: int = 4

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) -> (B, planes*4, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]


class ResNet(nn.Module):
    """ResNet / ResNeXt trunk with optional linear head.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: ``fc`` outputs; ``0`` builds no head (``self.fc is None``)
            and ``forward`` returns pooled features of size ``out_features``.
        in_chans: input image channels.
        groups, width_per_group: ResNeXt cardinality and per-group width.
        widths: base width of the 4 stages (torchvision: 64, 128, 256, 512).
        stem_width: channels of the 7x7 stem conv (torchvision: 64).
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        stem_width: int = 64,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"need 4 stages, got layers={tuple(layers)} widths={tuple(widths)}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.groups = groups
        self.base_width = width_per_group
        # Running input width while stages are built, as torchvision does.
        self.inplanes = stem_width
        self.dilation = 1

        self.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_features = widths[3] * block.expansion
        self.fc: Optional[nn.Linear] = None
        if num_classes > 0:
            # Linear keeps PyTorch's default init, exactly as torchvision.
            self.fc = nn.Linear(self.out_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        # A projection shortcut only where the shapes differ; identity elsewhere
        # (this decides which ``downsample`` keys exist, so it must match torchvision).
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [
            block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, self.dilation)
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(
                block(self.inplanes, planes, groups=self.groups, base_width=self.base_width, dilation=self.dilation)
            )
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> feature map (B, out_features, H/32, W/32) (ceil-rounded)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> logits (B, num_classes), or (B, out_features) when num_classes=0."""
        x = torch.flatten(self.avgpool(self.forward_features(x)), 1)
        if self.fc is not None:
            x = self.fc(x)
        return x


def resnet18(
    *,
    in_chans: int = 3,
    num_classes: int = 1000,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    stem_width: int = 64,
) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2); input (B, in_chans, H, W)."""
    return ResNet(
        BasicBlock, (2, 2, 2, 2),
        num_classes=num_classes, in_chans=in_chans, widths=widths, stem_width=stem_width,
    )


def resnet50(
    *,
    in_chans: int = 3,
    num_classes: int = 1000,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    stem_width: int = 64,
) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3); input (B, in_chans, H, W)."""
    return ResNet(
        Bottleneck, (3, 4, 6, 3),
        num_classes=num_classes, in_chans=in_chans, widths=widths, stem_width=stem_width,
    )


def resnext50_32x4d(
    *,
    in_chans: int = 3,
    num_classes: int = 1000,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    stem_width: int = 64,
) -> ResNet:
    """ResNeXt-50 32x4d (Bottleneck, 3-4-6-3, 32 groups of width 4); input (B, in_chans, H, W)."""
    return ResNet(
        Bottleneck, (3, 4, 6, 3),
        num_classes=num_classes, in_chans=in_chans, groups=32, width_per_group=4,
        widths=widths, stem_width=stem_width,
    )
