"""Student for `look_at_me` (is the person in a 7-frame face track looking at the camera wearer).

``tinylstm``: the GazeLSTM wiring at a fraction of its size: a depthwise-separable per-frame CNN pooled
globally to F features, optionally fused with the head-pose and landmark priors (as plain scaled
values through one linear layer, not GazePose's binned embeddings), a one-layer bidirectional LSTM
(hidden H), and a linear head on the centre frame.
"""

from __future__ import annotations

import torch
from torch import nn

from students._blocks import TinyTrunk
from students.registry import get_student, register_student
from teachers._checks import expect_shape

__all__ = ["TinyLSTM", "tinylstm"]

NUM_LANDMARKS = 5

PRESETS = {
    "tiny": {"stem": 8, "widths": [16, 24, 32, 48], "strides": [2, 2, 2, 2], "feature_dim": 32, "hidden_size": 32,
             "priors": False, "num_frames": 7, "input_size": 64},
    "small": {"stem": 16, "widths": [24, 32, 48, 64], "strides": [2, 2, 2, 2], "feature_dim": 48, "hidden_size": 48,
              "priors": True, "num_frames": 7, "input_size": 64},
}


def _shapes(cfg) -> dict[str, tuple[int, ...]]:
    t, s = cfg["num_frames"], cfg["input_size"]
    return {"frames": (t, 3, s, s), "head_pose": (t, 3), "landmarks": (t, NUM_LANDMARKS, 2)}


@register_student(
    "tinylstm",
    description="depthwise-separable per-frame CNN + 1-layer bidirectional LSTM, centre-frame head (look_at_me)",
    task="look_at_me",
    presets=PRESETS,
    example_shapes=_shapes,
    hint_layer="lstm",
    width_param="hidden_size",
    width_factor=2,  # the bidirectional LSTM's output is both directions side by side
    input_ranges={"head_pose": (-90.0, 90.0), "landmarks": (0.0, 1.0)},
)
class TinyLSTM(nn.Module):
    """forward(frames (B,T,3,S,S), head_pose (B,T,3), landmarks (B,T,5,2)) -> {"logit": (B,)}.

    Args:
        stem, widths, strides: the per-frame CNN (globally average-pooled).
        feature_dim: F, the per-frame feature size fed to the LSTM.
        hidden_size: H of the bidirectional LSTM.
        priors: fuse head pose (degrees / 90) and the 10 landmark coordinates into the frame features.
        num_frames: T; the head reads frame T // 2.
        input_size: S, the example frame size (any S >= 32 runs).
    """

    input_names = ("frames", "head_pose", "landmarks")
    output_names = ("logit",)

    def __init__(self, *, stem: int, widths: list[int], strides: list[int], feature_dim: int, hidden_size: int,
                 priors: bool, num_frames: int, input_size: int) -> None:
        super().__init__()
        self.num_frames = int(num_frames)
        self.center = self.num_frames // 2
        self.priors = bool(priors)
        self.trunk = TinyTrunk(3, stem, widths, strides)
        self.pool = nn.AdaptiveAvgPool2d(1)
        extra = 3 + 2 * NUM_LANDMARKS if self.priors else 0
        self.frame_fc = nn.Sequential(nn.Linear(self.trunk.out_channels + extra, feature_dim), nn.ReLU(inplace=True))
        self.lstm = nn.LSTM(feature_dim, hidden_size, num_layers=1, bidirectional=True, batch_first=True)
        self.last_layer = nn.Linear(2 * hidden_size, 1)

    def forward(self, frames: torch.Tensor, head_pose: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        """frames (B,T,3,S,S), head_pose (B,T,3) deg, landmarks (B,T,5,2) in [0,1] -> {"logit": (B,)}."""
        t = self.num_frames
        expect_shape(frames, "frames", (None, t, 3, None, None))
        b = frames.shape[0]
        expect_shape(head_pose, "head_pose", (b, t, 3))
        expect_shape(landmarks, "landmarks", (b, t, NUM_LANDMARKS, 2))
        x = torch.flatten(self.pool(self.trunk(frames.flatten(0, 1))), 1).view(b, t, -1)
        if self.priors:
            x = torch.cat([x, head_pose / 90.0, landmarks.flatten(2)], -1)
        out, _ = self.lstm(self.frame_fc(x))
        return {"logit": self.last_layer(out[:, self.center]).squeeze(-1)}


def tinylstm(*, preset: str = "tiny", **overrides) -> TinyLSTM:
    """Build :class:`TinyLSTM` at ``preset`` (``tiny`` | ``small``) with hyper-parameter overrides."""
    return get_student("tinylstm", preset=preset, **overrides)
