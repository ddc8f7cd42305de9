"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Semantics follow mmcv's ``modulated_deform_conv2d`` / CharlesShang's DCNv2 (the
op used by CenterNet's ``resdcn_18`` backbone):

* ``offset`` is (B, 2*dg*kh*kw, Ho, Wo); for deform group ``g`` and kernel tap
  ``k = i*kw + j`` channel ``g*2*K + 2*k`` is dy and ``g*2*K + 2*k + 1`` is dx;
* ``mask`` is (B, dg*kh*kw, Ho, Wo), channel ``g*K + k``;
* tap ``(i, j)`` of output pixel ``(ho, wo)`` reads input location
  ``(ho*s - p + i*d + dy, wo*s - p + j*d + dx)`` by bilinear interpolation,
  with zero contribution from corners outside the image.

Instead of a CUDA kernel the columns are gathered with ``F.grid_sample`` (which
is differentiable w.r.t. both input and sampling grid) and contracted with the
weight in one einsum, so it runs on any torch device without a compiled
extension (ONNX export needs opset >= 16 for GridSample).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DeformConv3x3Pack",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "modulated_deform_conv2d",
]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    deform_groups: int = 1,
) -> torch.Tensor:
    """Functional DCNv2.

    Shapes: x (B, C, H, W); weight (O, C/groups, kh, kw); bias (O,) or None;
    offset (B, 2*dg*kh*kw, Ho, Wo) in (dy, dx) interleaved order;
    mask (B, dg*kh*kw, Ho, Wo). Returns (B, O, Ho, Wo) with
    ``Ho = (H + 2*ph - dh*(kh-1) - 1)//sh + 1`` (same as ``F.conv2d``).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    b, c, h, w = x.shape
    o, c_per_group, kh, kw = weight.shape
    k = kh * kw
    dg = deform_groups
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if c % groups or o % groups or c_per_group * groups != c:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit {c} input channels with groups={groups}")
    if c % dg:
        raise ValueError(f"in channels {c} not divisible by deform_groups={dg}")
    if tuple(offset.shape) != (b, 2 * dg * k, ho, wo):
        raise ValueError(f"offset shape {tuple(offset.shape)}, expected {(b, 2 * dg * k, ho, wo)}")
    if tuple(mask.shape) != (b, dg * k, ho, wo):
        raise ValueError(f"mask shape {tuple(mask.shape)}, expected {(b, dg * k, ho, wo)}")

    dtype, device = x.dtype, x.device
    # Regular-grid sampling positions (in input pixel coordinates) per tap: (K, Ho, Wo).
    tap_y = torch.arange(kh, device=device, dtype=dtype) * dh
    tap_x = torch.arange(kw, device=device, dtype=dtype) * dw
    out_y = torch.arange(ho, device=device, dtype=dtype) * sh - ph
    out_x = torch.arange(wo, device=device, dtype=dtype) * sw - pw
    base_y = (tap_y[:, None, None, None] + out_y[None, None, :, None]).expand(kh, kw, ho, wo).reshape(k, ho, wo)
    base_x = (tap_x[None, :, None, None] + out_x[None, None, None, :]).expand(kh, kw, ho, wo).reshape(k, ho, wo)

    off = offset.reshape(b, dg, k, 2, ho, wo)
    py = base_y + off[:, :, :, 0]  # (B, dg, K, Ho, Wo)
    px = base_x + off[:, :, :, 1]
    # Pixel index p has its centre at normalised (2p+1)/size - 1 when
    # align_corners=False; this makes integer positions hit pixels exactly and
    # grid_sample's zeros padding reproduce mmcv's out-of-image behaviour.
    gx = (2.0 * px + 1.0) / w - 1.0
    gy = (2.0 * py + 1.0) / h - 1.0
    grid = torch.stack((gx, gy), dim=-1).reshape(b * dg, k * ho, wo, 2)

    cg = c // dg
    sampled = F.grid_sample(
        x.reshape(b * dg, cg, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B*dg, C/dg, K*Ho, Wo)
    cols = sampled.reshape(b, dg, cg, k, ho, wo) * mask.reshape(b, dg, 1, k, ho, wo)

    # Input channel c = g*cg + j in both the deform-group split and the
    # conv-group split, so one reshape regroups columns for the grouped matmul.
    cols = cols.reshape(b, groups, c_per_group * k, ho * wo)
    wmat = weight.reshape(groups, o // groups, c_per_group * k)
    out = torch.einsum("gon,bgnl->bgol", wmat, cols).reshape(b, o, ho, wo)
    if bias is not None:
        out = out + bias.view(1, o, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer; offsets and mask are supplied by the caller.

    ``forward(x, offset, mask)``: x (B, in_ch, H, W), offset
    (B, 2*dg*kh*kw, Ho, Wo) as (dy, dx) pairs, mask (B, dg*kh*kw, Ho, Wo) in
    [0, 1] -> (B, out_ch, Ho, Wo).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_ch % groups or out_ch % groups:
            raise ValueError(f"in_ch={in_ch} and out_ch={out_ch} must be divisible by groups={groups}")
        if in_ch % deform_groups:
            raise ValueError(f"in_ch={in_ch} must be divisible by deform_groups={deform_groups}")
        self.in_channels = in_ch
        self.out_channels = out_ch
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mmcv's init: U(-1/sqrt(n), 1/sqrt(n)) with n = in_ch * kh * kw, zero bias."""
        n = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        stdv = 1.0 / math.sqrt(n)
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W), (B, 2*dg*K, Ho, Wo), (B, dg*K, Ho, Wo) -> (B, out_ch, Ho, Wo)."""
        return modulated_deform_conv2d(
            x, offset, mask, self.weight, self.bias,
            self.stride, self.padding, self.dilation, self.groups, self.deform_groups,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, deform_groups={self.deform_groups}, bias={self.bias is not None}"
        )


class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """DCNv2 that predicts its own offsets and mask (mmcv ``ModulatedDeformConv2dPack``).

    ``conv_offset`` is a regular conv with the same geometry emitting
    3*dg*kh*kw channels: the first two thirds are the offsets, the last third
    goes through a sigmoid to become the mask. It is zero-initialised, so a fresh
    layer starts as a plain conv whose output is scaled by sigmoid(0) = 0.5
    (exactly as in mmcv/CenterNet), and learns to deform from there.
    ``forward(x)``: (B, in_ch, H, W) -> (B, out_ch, Ho, Wo).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(in_ch, out_ch, kernel_size, stride, padding, dilation, groups, deform_groups, bias)
        kh, kw = self.kernel_size
        self.conv_offset = nn.Conv2d(
            in_ch, deform_groups * 3 * kh * kw, self.kernel_size,
            stride=self.stride, padding=self.padding, dilation=self.dilation, bias=True,
        )
        self.init_offset()

    def init_offset(self) -> None:
        """Zero the offset/mask predictor so training starts from a regular grid."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(B, in_ch, H, W) -> (B, out_ch, Ho, Wo)."""
        out = self.conv_offset(x)
        # Same split as mmcv/DCNv2: chunk into thirds, first two = offsets
        # (their channel order is then read as interleaved (dy, dx) pairs),
        # so pretrained DCNv2 weights keep their meaning.
        o1, o2, m = torch.chunk(out, 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return modulated_deform_conv2d(
            x, offset, torch.sigmoid(m), self.weight, self.bias,
            self.stride, self.padding, self.dilation, self.groups, self.deform_groups,
        )


class DeformConv3x3Pack(ModulatedDeformConv2dPack):
    """3x3, padding 1 self-offsetting DCNv2 (CenterNet resdcn's ``DCN`` layer).

    (B, in_ch, H, W) -> (B, out_ch, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, deform_groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, deform_groups=deform_groups, bias=bias)
