"""Student for `face_eye_lola` (head and eye longitude/latitude from a grey face and a grey eye, MC4).

``tinylola``: MC4's two-net wiring with each ResNeXt replaced by a depthwise-separable CNN pooled
globally into a linear layer: the face net predicts head lo/la, the eye net eye-in-head lo/la (degrees),
composed into the gaze with the write-up's closed form and normalized by (a + 90) / 180, exactly as the
teacher's outputs are.
"""

from __future__ import annotations

import torch
from torch import nn

from students._blocks import TinyTrunk
from students.registry import get_student, register_student
from teachers._checks import expect_shape
from workbench.data.geometry import compose_lola, normalize_angle01

__all__ = ["TinyLola", "tinylola"]

PRESETS = {
    "tiny": {"stem": 8, "widths": [16, 24, 32, 48, 64], "strides": [2, 2, 2, 2, 1], "input_size": 112},
    "small": {"stem": 16, "widths": [24, 32, 48, 64, 96], "strides": [2, 2, 2, 2, 1], "input_size": 112},
}


class _Net(nn.Module):
    """(B, 1, S, S) grey image -> (B, 2) lo/la in degrees."""

    def __init__(self, stem: int, widths: list[int], strides: list[int]) -> None:
        super().__init__()
        self.trunk = TinyTrunk(1, stem, widths, strides)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.trunk.out_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.trunk(x)), 1))


@register_student(
    "tinylola",
    description="two depthwise-separable nets (face -> head, eye -> eye-in-head) + MC4's composition (face_eye_lola)",
    task="face_eye_lola",
    presets=PRESETS,
    example_shapes=lambda cfg: {"face": (1, cfg["input_size"], cfg["input_size"]),
                                "eye": (1, cfg["input_size"], cfg["input_size"])},
    hint_layer="face_net.trunk",
    width_param="widths[-1]",
)
class TinyLola(nn.Module):
    """forward(face (B,1,S,S), eye (B,1,S,S)) -> {"head", "eye", "gaze"}: (B,2) lo/la, each (a+90)/180.

    Args:
        stem, widths, strides: each net's CNN (globally pooled; any S >= 32 runs).
        input_size: S, the example image size.
    """

    input_names = ("face", "eye")
    output_names = ("head", "eye", "gaze")

    def __init__(self, *, stem: int, widths: list[int], strides: list[int], input_size: int) -> None:
        super().__init__()
        self.face_net = _Net(stem, widths, strides)
        self.eye_net = _Net(stem, widths, strides)

    def forward(self, face: torch.Tensor, eye: torch.Tensor) -> dict[str, torch.Tensor]:
        """face, eye (B, 1, S, S) grey -> {"head", "eye", "gaze"}: (B, 2) normalized lo/la."""
        expect_shape(face, "face", (None, 1, None, None))
        expect_shape(eye, "eye", (face.shape[0], 1, None, None))
        head = self.face_net(face)
        eye_lola = self.eye_net(eye)
        return {k: normalize_angle01(v) for k, v in
                {"head": head, "eye": eye_lola, "gaze": compose_lola(head, eye_lola)}.items()}


def tinylola(*, preset: str = "tiny", **overrides) -> TinyLola:
    """Build :class:`TinyLola` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("tinylola", preset=preset, **overrides)
