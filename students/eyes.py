"""Student for `eyes_pog` (the PoG from four eye images, the `itracker` teacher's task).

``tinytracker``: TinyTracker's idea: one small depthwise-separable conv branch shared by all four eye
images (run as one batch of 4B images), each eye's map flattened, the four concatenated into a small FC
head. Sharing the branch is what makes it small: the teacher keeps four independent branches and a large
first FC layer.
"""

from __future__ import annotations

import torch
from torch import nn

from students._blocks import TinyTrunk, out_size
from students.registry import get_student, register_student
from teachers._checks import expect_shape

__all__ = ["TinyTracker", "tinytracker"]

_INPUTS = ("v0_left", "v0_right", "v1_left", "v1_right")

PRESETS = {
    "tiny": {"stem": 8, "widths": [16, 24, 32], "strides": [2, 2, 2], "fc_hidden": 64, "input_size": 36},
    "small": {"stem": 16, "widths": [24, 32, 48], "strides": [2, 2, 2], "fc_hidden": 128, "input_size": 36},
}


@register_student(
    "tinytracker",
    description="one depthwise-separable branch shared by the four eye images + small FC (eyes_pog)",
    task="eyes_pog",
    presets=PRESETS,
    example_shapes=lambda cfg: {k: (3, cfg["input_size"], cfg["input_size"]) for k in _INPUTS},
    hint_layer="fc1",
    width_param="fc_hidden",
)
class TinyTracker(nn.Module):
    """forward(v0_left, v0_right, v1_left, v1_right, each (B,3,S,S)) -> {"pog": (B,2)} screen fractions.

    Args:
        stem, widths, strides: the shared branch.
        fc_hidden: width of the hidden FC layer over the four flattened maps.
        input_size: S; fixes the flattened size 4 * widths[-1] * g * g.
    """

    input_names = _INPUTS
    output_names = ("pog",)

    def __init__(self, *, stem: int, widths: list[int], strides: list[int], fc_hidden: int, input_size: int) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.branch = TinyTrunk(3, stem, widths, strides)
        g = out_size(self.input_size, strides)
        self.fc1 = nn.Linear(4 * self.branch.out_channels * g * g, fc_hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc_out = nn.Linear(fc_hidden, 2)
        nn.init.constant_(self.fc_out.bias, 0.5)  # an untrained model points at the screen centre

    def forward(self, v0_left: torch.Tensor, v0_right: torch.Tensor, v1_left: torch.Tensor,
                v1_right: torch.Tensor) -> dict[str, torch.Tensor]:
        """Four eye images (B, 3, S, S) -> {"pog": (B, 2)}."""
        eyes = (v0_left, v0_right, v1_left, v1_right)
        s = self.input_size
        for name, x in zip(_INPUTS, eyes):
            expect_shape(x, name, (None, 3, s, s))
        b = v0_left.shape[0]
        maps = self.branch(torch.cat(eyes, 0))  # (4B, C, g, g): one pass for all four eyes
        feats = torch.flatten(maps, 1).view(4, b, -1).transpose(0, 1).reshape(b, -1)
        return {"pog": self.fc_out(self.relu(self.fc1(feats)))}


def tinytracker(*, preset: str = "tiny", **overrides) -> TinyTracker:
    """Build :class:`TinyTracker` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("tinytracker", preset=preset, **overrides)
