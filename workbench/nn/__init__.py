"""Shared backbones in plain PyTorch with torchvision's state-dict key names.

torchvision is intentionally not a dependency: these modules reproduce its
layouts so its checkpoints load by key (see :mod:`workbench.nn.checkpoint`).
"""

from workbench.nn.checkpoint import LoadReport, load_torchvision_state_dict, read_state_dict
from workbench.nn.deform_conv import (
    DeformConv3x3Pack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
    modulated_deform_conv2d,
)
from workbench.nn.mobilenetv2 import (
    ConvBNReLU,
    InvertedResidual,
    MobileNetV2,
    make_divisible,
    mobilenet_v2,
    mobilenet_v2_trunk,
)
from workbench.nn.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50, resnext50_32x4d

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ConvBNReLU",
    "DeformConv3x3Pack",
    "InvertedResidual",
    "LoadReport",
    "MobileNetV2",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "ResNet",
    "load_torchvision_state_dict",
    "make_divisible",
    "mobilenet_v2",
    "mobilenet_v2_trunk",
    "modulated_deform_conv2d",
    "read_state_dict",
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
]
