"""`itracker`: iTracker-like point-of-gaze from four eye images (two eyes seen by two cameras), or from
two (one camera, ``views=1``: GazeCapture).

Wiring: one independent conv branch per eye image (no weight sharing)
    eye (B,3,S,S) -> conv kxk/s + ReLU -> conv3x3 + ReLU + pool2 -> conv3x3 + ReLU + pool2
                  -> conv3x3 + ReLU + pool2 -> projection conv3x3 (no bias) + ReLU     (B, P, g, g)
    concat of the 2*views flattened maps (2*views*P*g*g) -> FC1 (no bias) + ReLU -> FC2 + ReLU -> 2
    -> {"pog": (B, 2)}, the PoG in the task's unit (a fraction of the screen, or cm from the camera).

The write-up's point is the imbalance: the first FC layer holds more than three times the parameters
of all conv branches together, which is why FC-layer importance analysis exists. Its figures pin the
paper preset down: 1,089,536 = 8,512 * 128 is a bias-free FC1 of 128 units over 4 x 133 x 4 x 4 inputs,
and 342,240 = 4 x 85,560 is what these branches hold with channels (32, 32, 40, 40) and a bias-free
3x3 projection to 133 channels. Both figures are reproduced exactly (at ``views=2``, both presets'
default). With ``views=1`` the model takes ``v0_left, v0_right`` only: two branches, FC1 half as wide
in its inputs. The training engine sets it from the data (the ``eyes_pog`` task's ``adapt``).
"""

from __future__ import annotations

import torch
from torch import nn

from teachers._checks import conv_out, expect_shape
from teachers.registry import get_teacher, register_teacher
from workbench.train.recipes import Recipe

__all__ = ["EyeBranch", "ITracker", "itracker"]

_INPUTS = ("v0_left", "v0_right", "v1_left", "v1_right")

PRESETS = {
    "paper": {"branch_channels": [32, 32, 40, 40], "proj_channels": 133, "stem_kernel": 5, "stem_stride": 2,
              "fc1": 128, "fc2": 64, "input_size": 64, "views": 2},
    # 36 px eye crops: stride-1 stem so the maps still end at 4x4, as at the paper preset.
    "cpu": {"branch_channels": [16, 16, 32, 32], "proj_channels": 64, "stem_kernel": 5, "stem_stride": 1,
            "fc1": 128, "fc2": 64, "input_size": 36, "views": 2},
}


def _inputs(views: int) -> tuple[str, ...]:
    """The eye images a model with ``views`` camera views takes, in order."""
    if views not in (1, 2):
        raise ValueError(f"expected views 1 or 2 (camera views of two eyes each), got {views!r}")
    return _INPUTS[: 2 * views]


def _relu() -> nn.ReLU:
    return nn.ReLU(inplace=True)


class EyeBranch(nn.Module):
    """One eye's conv branch: (B, 3, S, S) -> (B, proj_channels, g, g); ``out_size`` is g."""

    def __init__(self, channels: list[int], proj_channels: int, stem_kernel: int, stem_stride: int,
                 input_size: int) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"expected 4 branch_channels, got {list(channels)}")
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, stem_kernel, stride=stem_stride, padding=stem_kernel // 2), _relu(),
            nn.Conv2d(c1, c2, 3, padding=1), _relu(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), _relu(), nn.MaxPool2d(2),
            nn.Conv2d(c3, c4, 3, padding=1), _relu(), nn.MaxPool2d(2),
            # Bias-free projection: the write-up's conv figure counts no bias here (see module doc).
            nn.Conv2d(c4, proj_channels, 3, padding=1, bias=False), _relu(),
        )
        g = conv_out(input_size, stem_kernel, stem_stride, stem_kernel // 2)
        for _ in range(3):
            g //= 2
        if g < 1:
            raise ValueError(f"input_size {input_size} is too small for this branch (maps shrink to {g})")
        self.out_size = g
        self.out_features = proj_channels * g * g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, proj_channels, g, g)."""
        return self.features(x)


# iTracker-like: SGD with momentum.
ITRACKER_RECIPES = {
    "paper": Recipe(epochs=25, batch_size=64, optimizer="sgd", lr=1e-3, weight_decay=5e-4, milestones=(15,),
                    n_train=20000, n_val=2000, size=64),
    "cpu": Recipe(epochs=10, batch_size=64, optimizer="adam", lr=1e-3, milestones=(7,), clip_grad=5.0,
                  n_train=12000, n_val=1200, size=36),
}


@register_teacher(
    "itracker",
    source="Eye-tracking model with explainability (iTracker-like, four eye images from two views)",
    task="eyes_pog",
    inputs=_INPUTS,
    presets=PRESETS,
    example_shapes=lambda cfg: {k: (3, cfg["input_size"], cfg["input_size"]) for k in _inputs(cfg["views"])},
    # The model's own facts: GradCam's layer per image input (the last feature map of each trunk),
    # the default FitNets hint layer (the last features before the head), the training recipes.
    gradcam_layers={k: f"branches.{k}" for k in _INPUTS},
    hint_layer="fc1",
    recipes=ITRACKER_RECIPES,
)
class ITracker(nn.Module):
    """forward(v0_left, v0_right, v1_left, v1_right, each (B,3,S,S)) -> {"pog": (B,2)} screen fractions;
    with ``views=1`` forward(v0_left, v0_right).

    Args:
        branch_channels: the four hidden conv widths of every branch.
        proj_channels: channels of each branch's output map.
        stem_kernel, stem_stride: the first conv.
        fc1, fc2: widths of the two hidden FC layers (FC1 has no bias).
        input_size: S; fixes FC1's input size 2 * views * proj_channels * g * g.
        views: camera views (1 or 2), each giving a left and a right eye image.
    """

    input_names = _INPUTS
    output_names = ("pog",)

    def __init__(self, *, branch_channels: list[int], proj_channels: int, stem_kernel: int, stem_stride: int,
                 fc1: int, fc2: int, input_size: int, views: int = 2) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.input_names = _inputs(views)
        self.branches = nn.ModuleDict({
            name: EyeBranch(list(branch_channels), proj_channels, stem_kernel, stem_stride, self.input_size)
            for name in self.input_names
        })
        flat = sum(b.out_features for b in self.branches.values())
        # The write-up's FC1 figure is weights only (8,512 x 128): no bias.
        self.fc1 = nn.Linear(flat, fc1, bias=False)
        self.fc2 = nn.Linear(fc1, fc2)
        self.fc_out = nn.Linear(fc2, 2)
        self.relu = nn.ReLU(inplace=True)
        # An untrained model points at the screen centre.
        nn.init.constant_(self.fc_out.bias, 0.5)

    def conv_parameters(self) -> int:
        """Parameters of all conv branches together."""
        return sum(p.numel() for p in self.branches.parameters())

    def forward(self, v0_left: torch.Tensor, v0_right: torch.Tensor, v1_left: torch.Tensor | None = None,
                v1_right: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """2 x views eye images (B, 3, S, S) -> {"pog": (B, 2)} in the task's unit."""
        given = [x for x in (v0_left, v0_right, v1_left, v1_right) if x is not None]
        if len(given) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} eye images ({', '.join(self.input_names)}), "
                             f"got {len(given)}")
        s = self.input_size
        for name, x in zip(self.input_names, given):
            expect_shape(x, name, (None, 3, s, s))
        feats = [torch.flatten(self.branches[name](x), 1) for name, x in zip(self.input_names, given)]
        x = self.relu(self.fc1(torch.cat(feats, dim=1)))
        x = self.relu(self.fc2(x))
        return {"pog": self.fc_out(x)}


def itracker(*, preset: str = "cpu", **overrides) -> ITracker:
    """Build :class:`ITracker` at ``preset`` (``paper`` | ``cpu``) with hyper-parameter overrides."""
    return get_teacher("itracker", preset=preset, **overrides)
