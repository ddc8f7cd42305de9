"""`gazelstm` and `gazepose`: Ego4D Looking-At-Me over a 7-frame face track.

``gazelstm`` (the Gaze360-style baseline):
    frames (B,T,3,S,S) -> per-frame ResNet-18 with fc 512->F          (B,T,F)
    -> 2-layer bidirectional LSTM (hidden H, batch_first)              (B,T,2H)
    -> the centre frame's output -> Linear(2H -> 1)                    (B,)

``gazepose`` adds, each behind its own switch so the write-up's ablations run:
    * head-pose prior: yaw, pitch, roll (degrees) binned in 1-degree bins over [-90, 90] -> three
      Embedding(181, d);
    * landmark prior: each of the 5x2 landmark coordinates binned on a 0.1 grid over [0, 1] -> ten
      Embedding(11, d);
    * the prior embeddings are concatenated with the frame features and projected back to F;
    * Gaussian temporal dropout (training only): a non-centre frame's fused features are zeroed with
      probability p_max * (1 - exp(-d^2 / (2 sigma^2))), d its distance to the centre frame.
With all three switched off GazePose has exactly GazeLSTM's modules and parameters.
Both take the task's three inputs; GazeLSTM ignores head pose and landmarks.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from teachers._checks import expect_shape
from teachers.registry import get_teacher, register_teacher
from workbench.nn import resnet18
from workbench.train.recipes import Recipe

__all__ = ["GazeLSTM", "GazePose", "gaussian_drop_probs", "gaussian_keep_mask", "gazelstm", "gazepose"]

HEAD_BINS = 181  # 1-degree bins over [-90, 90]
LANDMARK_BINS = 11  # 0.1 grid over [0, 1]
NUM_LANDMARKS = 5

_LSTM_PAPER = {"widths": [64, 128, 256, 512], "stem_width": 64, "feature_dim": 256, "hidden_size": 256,
               "num_layers": 2, "num_frames": 7, "input_size": 224}
_LSTM_CPU = {"widths": [16, 32, 64, 128], "stem_width": 16, "feature_dim": 64, "hidden_size": 64,
             "num_layers": 2, "num_frames": 7, "input_size": 64}
_POSE_EXTRA_PAPER = {"prior_head": True, "prior_landmark": True, "gaussian_drop": True, "prior_dim": 32,
                     "drop_p_max": 0.5, "drop_sigma": 2.0}
_POSE_EXTRA_CPU = {**_POSE_EXTRA_PAPER, "prior_dim": 8}

LSTM_PRESETS = {"paper": _LSTM_PAPER, "cpu": _LSTM_CPU}
POSE_PRESETS = {"paper": {**_LSTM_PAPER, **_POSE_EXTRA_PAPER}, "cpu": {**_LSTM_CPU, **_POSE_EXTRA_CPU}}

_INPUTS = ("frames", "head_pose", "landmarks")
_RANGES = {"head_pose": (-90.0, 90.0), "landmarks": (0.0, 1.0)}


def _shapes(cfg) -> dict[str, tuple[int, ...]]:
    t, s = cfg["num_frames"], cfg["input_size"]
    return {"frames": (t, 3, s, s), "head_pose": (t, 3), "landmarks": (t, NUM_LANDMARKS, 2)}


def gaussian_drop_probs(num_frames: int, *, p_max: float, sigma: float) -> torch.Tensor:
    """(T,) drop probability per frame: p_max * (1 - exp(-d^2 / (2 sigma^2))), d = |t - T//2|.

    The centre frame's probability is exactly 0; it grows with the distance to the centre.
    """
    if not 0.0 <= p_max <= 1.0:
        raise ValueError(f"expected 0 <= p_max <= 1, got {p_max}")
    if sigma <= 0:
        raise ValueError(f"expected sigma > 0, got {sigma}")
    d = torch.arange(num_frames, dtype=torch.float64) - num_frames // 2
    return (p_max * (1.0 - torch.exp(-(d**2) / (2.0 * sigma**2)))).float()


def gaussian_keep_mask(batch: int, num_frames: int, *, p_max: float, sigma: float,
                       generator: Optional[torch.Generator] = None,
                       device: Optional[torch.device] = None) -> torch.Tensor:
    """(B, T) float mask, 1 = keep, 0 = drop, drawn with :func:`gaussian_drop_probs` per frame.

    The centre frame T//2 is always kept.
    """
    probs = gaussian_drop_probs(num_frames, p_max=p_max, sigma=sigma)
    u = torch.rand(batch, num_frames, generator=generator)
    keep = (u >= probs).float()
    keep[:, num_frames // 2] = 1.0  # guard: p(centre) = 0 already, but never leave it to rounding
    return keep.to(device) if device is not None else keep


# Ego4D Looking-At-Me baselines: Adam.
GAZELSTM_RECIPES = {
    "paper": Recipe(epochs=20, batch_size=32, optimizer="adam", lr=1e-4, n_train=20000, n_val=2000, size=224),
    "cpu": Recipe(epochs=8, batch_size=32, optimizer="adam", lr=1e-3, clip_grad=5.0, n_train=4000, n_val=600, size=64),
}


@register_teacher(
    "gazelstm",
    source="Ego4D Looking-At-Me baseline (Gaze360-style GazeLSTM)",
    task="look_at_me",
    inputs=_INPUTS,
    presets=LSTM_PRESETS,
    example_shapes=_shapes,
    input_ranges=_RANGES,
    # The model's own facts: GradCam's layer per image input (the last feature map of each trunk),
    # the default FitNets hint layer (the last features before the head), the training recipes.
    gradcam_layers={"frames": "base_model.layer4"},
    hint_layer="lstm",
    recipes=GAZELSTM_RECIPES,
)
class GazeLSTM(nn.Module):
    """forward(frames (B,T,3,S,S), head_pose (B,T,3), landmarks (B,T,5,2)) -> {"logit": (B,)}.

    Args:
        widths, stem_width: ResNet-18 stage widths and stem.
        feature_dim: per-frame feature size F (the ResNet's fc 512->F).
        hidden_size, num_layers: the bidirectional LSTM.
        num_frames: T (7); the head reads frame T//2.
        input_size: S, the example frame size (the trunk pools globally, any S >= 32 runs).
    """

    input_names = _INPUTS
    output_names = ("logit",)

    def __init__(self, *, widths: list[int], stem_width: int, feature_dim: int, hidden_size: int,
                 num_layers: int, num_frames: int, input_size: int) -> None:
        super().__init__()
        self.num_frames = int(num_frames)
        self.center = self.num_frames // 2
        self.base_model = resnet18(num_classes=feature_dim, widths=tuple(widths), stem_width=stem_width)
        self.lstm = nn.LSTM(feature_dim, hidden_size, num_layers=num_layers, bidirectional=True, batch_first=True)
        self.last_layer = nn.Linear(2 * hidden_size, 1)

    def _check(self, frames: torch.Tensor, head_pose: torch.Tensor, landmarks: torch.Tensor) -> None:
        t = self.num_frames
        expect_shape(frames, "frames", (None, t, 3, None, None))
        expect_shape(head_pose, "head_pose", (frames.shape[0], t, 3))
        expect_shape(landmarks, "landmarks", (frames.shape[0], t, NUM_LANDMARKS, 2))

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) -> (B, T, F): the trunk runs on all B*T frames at once."""
        b, t = frames.shape[:2]
        return self.base_model(frames.flatten(0, 1)).view(b, t, -1)

    def fuse(self, feats: torch.Tensor, head_pose: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F) LSTM inputs; the baseline uses the frame features alone."""
        return feats

    def forward(self, frames: torch.Tensor, head_pose: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        """frames (B,T,3,S,S), head_pose (B,T,3) deg, landmarks (B,T,5,2) in [0,1] -> {"logit": (B,)}."""
        self._check(frames, head_pose, landmarks)
        x = self.fuse(self.frame_features(frames), head_pose, landmarks)
        out, _ = self.lstm(x)
        return {"logit": self.last_layer(out[:, self.center]).squeeze(-1)}


GAZEPOSE_RECIPES = GAZELSTM_RECIPES  # the baseline's budget, so the two compare like for like


@register_teacher(
    "gazepose",
    source="Ego4D Looking-At-Me: GazePose (head-pose and landmark priors, Gaussian temporal dropout)",
    task="look_at_me",
    inputs=_INPUTS,
    presets=POSE_PRESETS,
    example_shapes=_shapes,
    input_ranges=_RANGES,
    # The model's own facts: GradCam's layer per image input (the last feature map of each trunk),
    # the default FitNets hint layer (the last features before the head), the training recipes.
    gradcam_layers={"frames": "base_model.layer4"},
    hint_layer="lstm",
    recipes=GAZEPOSE_RECIPES,
)
class GazePose(GazeLSTM):
    """GazeLSTM plus switchable head-pose / landmark priors and Gaussian temporal dropout.

    Extra args:
        prior_head, prior_landmark, gaussian_drop: the three switches of the write-up's ablations.
        prior_dim: d, the size of every prior embedding.
        drop_p_max, drop_sigma: Gaussian temporal dropout's maximum rate and width (frames).
    """

    def __init__(self, *, prior_head: bool, prior_landmark: bool, gaussian_drop: bool, prior_dim: int,
                 drop_p_max: float, drop_sigma: float, **lstm_cfg) -> None:
        super().__init__(**lstm_cfg)
        self.prior_head = bool(prior_head)
        self.prior_landmark = bool(prior_landmark)
        self.gaussian_drop = bool(gaussian_drop)
        self.drop_p_max = float(drop_p_max)
        self.drop_sigma = float(drop_sigma)
        gaussian_drop_probs(self.num_frames, p_max=self.drop_p_max, sigma=self.drop_sigma)  # validate early
        feature_dim = lstm_cfg["feature_dim"]
        width = feature_dim
        if self.prior_head:
            self.head_embed = nn.ModuleList(nn.Embedding(HEAD_BINS, prior_dim) for _ in range(3))
            width += 3 * prior_dim
        if self.prior_landmark:
            self.landmark_embed = nn.ModuleList(nn.Embedding(LANDMARK_BINS, prior_dim)
                                                for _ in range(2 * NUM_LANDMARKS))
            width += 2 * NUM_LANDMARKS * prior_dim
        if width != feature_dim:
            self.prior_proj = nn.Linear(width, feature_dim)

    @staticmethod
    def head_bins(head_pose: torch.Tensor) -> torch.Tensor:
        """(..., 3) degrees -> (..., 3) long bins in [0, 180] (1-degree bins, -90 -> 0, clamped)."""
        return (torch.round(head_pose) + 90).clamp(0, HEAD_BINS - 1).long()

    @staticmethod
    def landmark_bins(landmarks: torch.Tensor) -> torch.Tensor:
        """(..., 5, 2) in [0, 1] -> (..., 10) long bins in [0, 10] (0.1 grid, clamped)."""
        return torch.round(landmarks * (LANDMARK_BINS - 1)).clamp(0, LANDMARK_BINS - 1).long().flatten(-2)

    def fuse(self, feats: torch.Tensor, head_pose: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, T, F) frame features + priors -> (B, T, F) LSTM inputs (dropped frames zeroed in training)."""
        parts = [feats]
        if self.prior_head:
            bins = self.head_bins(head_pose)
            parts += [emb(bins[..., i]) for i, emb in enumerate(self.head_embed)]
        if self.prior_landmark:
            bins = self.landmark_bins(landmarks)
            parts += [emb(bins[..., i]) for i, emb in enumerate(self.landmark_embed)]
        x = self.prior_proj(torch.cat(parts, dim=-1)) if len(parts) > 1 else feats
        if self.gaussian_drop and self.training:
            keep = gaussian_keep_mask(x.shape[0], x.shape[1], p_max=self.drop_p_max, sigma=self.drop_sigma,
                                      device=x.device)
            x = x * keep.to(x.dtype).unsqueeze(-1)
        return x


def gazelstm(*, preset: str = "cpu", **overrides) -> GazeLSTM:
    """Build :class:`GazeLSTM` at ``preset`` (``paper`` | ``cpu``) with hyper-parameter overrides."""
    return get_teacher("gazelstm", preset=preset, **overrides)


def gazepose(*, preset: str = "cpu", **overrides) -> GazePose:
    """Build :class:`GazePose` at ``preset`` (``paper`` | ``cpu``) with hyper-parameter overrides."""
    return get_teacher("gazepose", preset=preset, **overrides)
