"""Students for `face_angles` (gaze pitch/yaw from a normalized face, the `gazenet` teacher's task).

``tinyface``: a depthwise-separable CNN (stride-2 stem, DS blocks to stride 32) whose last map is
flattened into a small FC head, as gazenet flattens its 4x4 map: position matters (where the eyes are),
so no global pooling. At ``tiny`` it costs about 6% of gazenet-cpu's MACs.

``mobileface``: gazenet's own family shrunk: MobileNetV2 ``features[0..17]`` at width 0.25 / 0.35 with a
1x1 ConvBNReLU to ``feature_channels`` and the flattened FC head, without the spatial-weights branch.
"""

from __future__ import annotations

import torch
from torch import nn

from students._blocks import TinyTrunk, out_size
from students.registry import get_student, register_student
from teachers._checks import expect_shape
from workbench.nn import mobilenet_v2_trunk

__all__ = ["MobileFace", "TinyFace", "mobileface", "tinyface"]

TINY_PRESETS = {
    "tiny": {"stem": 8, "widths": [16, 24, 24, 48, 48, 64], "strides": [2, 2, 1, 2, 1, 2], "fc_hidden": 128,
             "dropout": 0.1, "input_size": 112},
    "small": {"stem": 16, "widths": [24, 32, 32, 64, 64, 96, 96], "strides": [2, 2, 1, 2, 1, 2, 1], "fc_hidden": 128,
              "dropout": 0.1, "input_size": 112},
}

MOBILE_PRESETS = {
    "tiny": {"width_mult": 0.25, "feature_channels": 64, "fc_hidden": 128, "dropout": 0.1, "input_size": 112},
    "small": {"width_mult": 0.35, "feature_channels": 96, "fc_hidden": 128, "dropout": 0.1, "input_size": 112},
}


def _face_shape(cfg) -> dict[str, tuple[int, ...]]:
    return {"face": (3, cfg["input_size"], cfg["input_size"])}


def _head(in_features: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, 2))


@register_student(
    "tinyface",
    description="depthwise-separable CNN to stride 32, flattened map -> FC (face_angles)",
    task="face_angles",
    presets=TINY_PRESETS,
    example_shapes=_face_shape,
    hint_layer="trunk",
    width_param="widths[-1]",
)
class TinyFace(nn.Module):
    """forward(face (B,3,S,S) ImageNet-normalized) -> {"gaze": (B,2)} pitch, yaw in radians.

    Args:
        stem: channels of the stride-2 3x3 stem.
        widths, strides: the depthwise-separable blocks (output channels, stride 1 or 2).
        fc_hidden, dropout: the FC head over the flattened last map.
        input_size: S; fixes the flattened size widths[-1] * g * g.
    """

    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self, *, stem: int, widths: list[int], strides: list[int], fc_hidden: int, dropout: float,
                 input_size: int) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.trunk = TinyTrunk(3, stem, widths, strides)
        g = out_size(self.input_size, strides)
        self.fc = _head(self.trunk.out_channels * g * g, fc_hidden, dropout)

    def forward(self, face: torch.Tensor) -> dict[str, torch.Tensor]:
        """face (B, 3, S, S) -> {"gaze": (B, 2)}."""
        expect_shape(face, "face", (None, 3, self.input_size, self.input_size))
        return {"gaze": self.fc(torch.flatten(self.trunk(face), 1))}


@register_student(
    "mobileface",
    description="MobileNetV2 features[0..17] at width 0.25-0.35 + 1x1 conv, flattened -> FC (face_angles)",
    task="face_angles",
    presets=MOBILE_PRESETS,
    example_shapes=_face_shape,
    hint_layer="features",
    width_param="feature_channels",
)
class MobileFace(nn.Module):
    """forward(face (B,3,S,S)) -> {"gaze": (B,2)}: gazenet's wiring, narrower and without spatial weights.

    Args:
        width_mult: MobileNetV2 width multiplier.
        feature_channels: output channels of the 1x1 ConvBNReLU replacing ``features.18``.
        fc_hidden, dropout: the FC head over the flattened (feature_channels, S/32, S/32) map.
        input_size: S.
    """

    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self, *, width_mult: float, feature_channels: int, fc_hidden: int, dropout: float,
                 input_size: int) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.features = mobilenet_v2_trunk(width_mult=width_mult, out_channels=feature_channels)
        g = out_size(self.input_size, [2, 2, 2, 2])
        self.fc = _head(feature_channels * g * g, fc_hidden, dropout)

    def forward(self, face: torch.Tensor) -> dict[str, torch.Tensor]:
        """face (B, 3, S, S) -> {"gaze": (B, 2)}."""
        expect_shape(face, "face", (None, 3, self.input_size, self.input_size))
        return {"gaze": self.fc(torch.flatten(self.features(face), 1))}


def tinyface(*, preset: str = "tiny", **overrides) -> TinyFace:
    """Build :class:`TinyFace` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("tinyface", preset=preset, **overrides)


def mobileface(*, preset: str = "tiny", **overrides) -> MobileFace:
    """Build :class:`MobileFace` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("mobileface", preset=preset, **overrides)
