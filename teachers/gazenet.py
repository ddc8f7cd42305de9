"""`gazenet`: MPIIFaceGaze full-face gaze regression with spatial weights on a MobileNetV2 trunk.

Wiring (paper preset, S = 112):

    face (B,3,112,112) -> MobileNetV2 features[0..17] -> ConvBNReLU(320->256, 1x1)   (B,256,4,4)
      -> spatial weights: 1x1 conv 256->256, ReLU, 256->256, ReLU, 256->1, ReLU        (B,1,4,4)
      -> features * weights (broadcast over channels) -> flatten                       (B,4096)
      -> FC 4096->512, ReLU, Dropout(0.5), 512->512, ReLU, Dropout(0.5), 512->2        (B,2)

which is exactly 4,387,331 parameters. ``features`` keeps torchvision's indices, so an ImageNet
MobileNetV2 checkpoint loads into ``features.0`` .. ``features.17`` (``features.18`` differs by design).
"""

from __future__ import annotations

import torch
from torch import nn

from teachers._checks import expect_shape
from teachers.registry import get_teacher, register_teacher
from workbench.nn import mobilenet_v2_trunk
from workbench.train.recipes import Recipe

__all__ = ["GazeNet", "SpatialWeights", "gazenet"]

PRESETS = {
    "paper": {"width_mult": 1.0, "feature_channels": 256, "fc_hidden": 512, "dropout": 0.5, "input_size": 112},
    # Same wiring at half width: features[17] gives 160 channels, the last block 160->128, FC 2048->256->256->2.
    # Dropout 0.25 (a rate, not wiring): at 0.5 the head underfits in a 10-minute CPU budget (7.0 vs 5.5 deg).
    "cpu": {"width_mult": 0.5, "feature_channels": 128, "fc_hidden": 256, "dropout": 0.25, "input_size": 112},
}


def _trunk_size(size: int) -> int:
    """Spatial size after MobileNetV2's five stride-2 3x3 convs (padding 1: ceil halving)."""
    for _ in range(5):
        size = (size + 1) // 2
    return size


class SpatialWeights(nn.Module):
    """Three 1x1 convs (C->C->C->1, ReLU after each) whose 1-channel map re-weights the features.

    (B, C, H, W) -> (B, C, H, W) = features * map, the map (B, 1, H, W) broadcast over channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weights = nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, 1, 1), nn.ReLU(inplace=True),
        )
        # The write-up's init: the map starts near a constant 1 (bias 1 on the last conv), so training
        # begins from the plain CNN and learns where to look.
        for conv, std, bias in zip(self.weights[::2], (0.01, 0.01, 0.001), (0.1, 0.1, 1.0)):
            nn.init.normal_(conv.weight, 0.0, std)
            nn.init.constant_(conv.bias, bias)

    def weight_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) non-negative spatial weights."""
        return self.weights(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x * self.weight_map(x)


# MPIIFaceGaze full-face: SGD with Nesterov momentum, MultiStepLR at epochs 4 and 8.
GAZENET_RECIPES = {
    "paper": Recipe(epochs=12, batch_size=64, optimizer="sgd", lr=0.01, nesterov=True, weight_decay=1e-4,
                    milestones=(4, 8), n_train=40000, n_val=4000, size=112),
    # cpu: the same optimizer and two-step schedule, shifted to (5, 7) for the shorter run. Sized to
    # train in under 10 minutes on two cores: 13,000 x 8 epochs (16,000 x 10 took 13 min on an Intel
    # Xeon with AVX-512; MobileNetV2's batch-norm and ReLU6 passes, memory-bound, are most of a step).
    "cpu": Recipe(epochs=8, batch_size=64, optimizer="sgd", lr=0.02, nesterov=True, weight_decay=1e-4,
                  milestones=(5, 7), clip_grad=5.0, n_train=13000, n_val=2000, size=112),
}


@register_teacher(
    "gazenet",
    source="MPIIFaceGaze full-face appearance-based gaze estimation (spatial weights CNN, MobileNetV2 trunk)",
    task="face_angles",
    inputs=("face",),
    presets=PRESETS,
    example_shapes=lambda cfg: {"face": (3, cfg["input_size"], cfg["input_size"])},
    # The model's own facts: GradCam's layer per image input (the last feature map of each trunk),
    # the default FitNets hint layer (the last features before the head), the training recipes.
    gradcam_layers={"face": "features.18"},
    hint_layer="features",
    recipes=GAZENET_RECIPES,
)
class GazeNet(nn.Module):
    """Full-face gaze regressor. forward(face (B,3,S,S) ImageNet-normalized) -> {"gaze": (B,2)} (pitch, yaw) rad.

    Args:
        width_mult: MobileNetV2 width multiplier of ``features[0..17]``.
        feature_channels: output channels of the replacing last block (``features.18``).
        fc_hidden: width of the two hidden FC layers.
        dropout: dropout after each hidden FC layer.
        input_size: S; fixes the flattened size feature_channels * ceil(S/32)^2.
    """

    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self, *, width_mult: float, feature_channels: int, fc_hidden: int, dropout: float,
                 input_size: int) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.features = mobilenet_v2_trunk(width_mult=width_mult, out_channels=feature_channels)
        self.spatial_weights = SpatialWeights(feature_channels)
        grid = _trunk_size(self.input_size)
        self.fc = nn.Sequential(
            nn.Linear(feature_channels * grid * grid, fc_hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_hidden, fc_hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_hidden, 2),
        )

    def forward(self, face: torch.Tensor) -> dict[str, torch.Tensor]:
        """face (B, 3, S, S) -> {"gaze": (B, 2)} pitch, yaw in radians."""
        expect_shape(face, "face", (None, 3, self.input_size, self.input_size))
        x = self.spatial_weights(self.features(face))
        return {"gaze": self.fc(torch.flatten(x, 1))}


def gazenet(*, preset: str = "cpu", **overrides) -> GazeNet:
    """Build :class:`GazeNet` at ``preset`` (``paper`` | ``cpu``) with hyper-parameter overrides."""
    return get_teacher("gazenet", preset=preset, **overrides)
