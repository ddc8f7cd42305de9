"""Student for `plane_pog` (EVG's PoG heatmap on a virtual plane from the full camera frame).

``tinyevg``: CenterNet's layout at a fraction of the cost: a depthwise-separable encoder to stride 32,
three x2 nearest-neighbour upsampling stages each followed by a depthwise-separable conv (instead of
ConvTranspose2d), and the same heads as the teacher (conv3x3 + ReLU + conv1x1; heat-map bias -2.19).
The output grid is the teacher's (H/4, W/4), so heat-map and offset maps align cell by cell.
"""

from __future__ import annotations

import torch
from torch import nn

from students._blocks import DSConv, TinyTrunk
from students.registry import get_student, register_student
from teachers._checks import expect_shape

__all__ = ["TinyEVG", "tinyevg"]

HM_BIAS = -2.19

PRESETS = {
    "tiny": {"stem": 8, "widths": [16, 24, 32, 48, 64], "strides": [2, 2, 2, 2, 1], "decoder": [32, 24, 16],
             "head_channels": 16, "frame_hw": [288, 512]},
    "small": {"stem": 16, "widths": [24, 32, 48, 64, 96], "strides": [2, 2, 2, 2, 1], "decoder": [48, 32, 24],
              "head_channels": 24, "frame_hw": [288, 512]},
}


def _head(in_ch: int, mid: int, out: int, heatmap: bool) -> nn.Sequential:
    head = nn.Sequential(nn.Conv2d(in_ch, mid, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(mid, out, 1))
    if heatmap:
        nn.init.constant_(head[-1].bias, HM_BIAS)
    return head


@register_student(
    "tinyevg",
    description="depthwise-separable encoder to stride 32 + 3 upsample/DS-conv stages + hm/offset heads (plane_pog)",
    task="plane_pog",
    presets=PRESETS,
    example_shapes=lambda cfg: {"frame": (3, cfg["frame_hw"][0], cfg["frame_hw"][1])},
    hint_layer="decoder",
    width_param="decoder[-1]",
)
class TinyEVG(nn.Module):
    """forward(frame (B,3,H,W), H and W multiples of 32) -> {"hm": (B,1,H/4,W/4) logits, "offset": (B,2,H/4,W/4)}.

    Args:
        stem, widths, strides: the encoder (total stride must be 32).
        decoder: channels of the three x2 upsampling stages.
        head_channels: hidden channels of each head.
        frame_hw: example frame (height, width); any multiple of 32 runs.
    """

    input_names = ("frame",)
    output_names = ("hm", "offset")

    def __init__(self, *, stem: int, widths: list[int], strides: list[int], decoder: list[int], head_channels: int,
                 frame_hw: list[int]) -> None:
        super().__init__()
        self.trunk = TinyTrunk(3, stem, widths, strides)
        if self.trunk.stride != 32:
            raise ValueError(f"tinyevg's encoder must reach stride 32, got {self.trunk.stride} (strides {strides})")
        if len(decoder) != 3:
            raise ValueError(f"expected 3 decoder widths, got {list(decoder)}")
        layers: list[nn.Module] = []
        ch = self.trunk.out_channels
        for w in decoder:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), DSConv(ch, w)]
            ch = w
        self.decoder = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({"hm": _head(ch, head_channels, 1, True), "offset": _head(ch, head_channels, 2, False)})

    def forward(self, frame: torch.Tensor) -> dict[str, torch.Tensor]:
        """frame (B, 3, H, W) -> {"hm", "offset"} maps at (H/4, W/4)."""
        expect_shape(frame, "frame", (None, 3, None, None))
        h, w = int(frame.shape[-2]), int(frame.shape[-1])
        if h % 32 or w % 32:
            raise ValueError(f"expected frame height and width to be multiples of 32, got {h}x{w}")
        x = self.decoder(self.trunk(frame))
        return {name: head(x) for name, head in self.heads.items()}


def tinyevg(*, preset: str = "tiny", **overrides) -> TinyEVG:
    """Build :class:`TinyEVG` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("tinyevg", preset=preset, **overrides)
