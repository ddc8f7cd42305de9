"""DCNv2 (grid_sample implementation) against a slow loop-by-loop reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.nn import DeformConv3x3Pack, ModulatedDeformConv2d, ModulatedDeformConv2dPack, modulated_deform_conv2d


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """mmcv's dmcn_im2col_bilinear by hand: img (C, H, W) at real (y, x) -> (C,)."""
    _, h, w = img.shape
    out = torch.zeros(img.shape[0], dtype=img.dtype)
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return out
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    for yy, xx, wgt in (
        (y0, x0, (1 - ly) * (1 - lx)),
        (y0, x0 + 1, (1 - ly) * lx),
        (y0 + 1, x0, ly * (1 - lx)),
        (y0 + 1, x0 + 1, ly * lx),
    ):
        if 0 <= yy < h and 0 <= xx < w:
            out = out + wgt * img[:, yy, xx]
    return out


def reference_dcn(x, offset, mask, weight, bias, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, dg=1):
    """Per output pixel, per kernel tap, per deform group: explicit Python loops, float64."""
    x, offset, mask, weight = (t.detach().double() for t in (x, offset, mask, weight))
    bias = None if bias is None else bias.detach().double()
    b_sz, c, h, w = x.shape
    o, cpg, kh, kw = weight.shape
    k_n = kh * kw
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cg = c // dg
    opg = o // groups
    out = torch.zeros(b_sz, o, ho, wo, dtype=torch.float64)
    for b in range(b_sz):
        for oy in range(ho):
            for ox in range(wo):
                col = torch.zeros(c, kh, kw, dtype=torch.float64)
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for g in range(dg):
                            dy = float(offset[b, g * 2 * k_n + 2 * k, oy, ox])
                            dx = float(offset[b, g * 2 * k_n + 2 * k + 1, oy, ox])
                            m = float(mask[b, g * k_n + k, oy, ox])
                            py = oy * stride[0] - padding[0] + i * dilation[0] + dy
                            px = ox * stride[1] - padding[1] + j * dilation[1] + dx
                            col[g * cg:(g + 1) * cg, i, j] = m * _bilinear(x[b, g * cg:(g + 1) * cg], py, px)
                for oc in range(o):
                    gi = oc // opg
                    acc = (weight[oc] * col[gi * cpg:(gi + 1) * cpg]).sum()
                    out[b, oc, oy, ox] = acc + (0.0 if bias is None else float(bias[oc]))
    return out


def _out_hw(h, w, k, s, p, d):
    return (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1, (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1


CASES = [
    # (C, O, kernel, stride, padding, dilation, groups, deform_groups)
    (3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1),
    (3, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, 1),
    (3, 4, (3, 3), (1, 1), (2, 2), (2, 2), 1, 1),
    (4, 6, (3, 3), (2, 1), (1, 1), (1, 2), 2, 2),
    (4, 4, (2, 3), (1, 1), (0, 1), (1, 1), 1, 4),
]


@pytest.mark.parametrize("c, o, k, s, p, d, groups, dg", CASES)
def test_matches_loop_reference(c, o, k, s, p, d, groups, dg) -> None:
    b, h, w = 2, 7, 6
    layer = ModulatedDeformConv2d(c, o, k, s, p, d, groups=groups, deform_groups=dg)
    with torch.no_grad():
        layer.bias.uniform_(-1, 1)
    ho, wo = _out_hw(h, w, k, s, p, d)
    x = torch.randn(b, c, h, w)
    offset = (torch.rand(b, 2 * dg * k[0] * k[1], ho, wo) * 2 - 1) * 2.0  # up to +-2 px
    mask = torch.rand(b, dg * k[0] * k[1], ho, wo)
    with torch.no_grad():
        out = layer(x, offset, mask)
    expected = reference_dcn(x, offset, mask, layer.weight, layer.bias, s, p, d, groups, dg)
    assert out.shape == (b, o, ho, wo)
    torch.testing.assert_close(out, expected.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 2, 2, 1), (1, 1, 1, 2)],
)
def test_zero_offset_unit_mask_equals_conv2d(stride, padding, dilation, groups) -> None:
    x = torch.randn(2, 4, 9, 8)
    layer = ModulatedDeformConv2d(4, 6, 3, stride, padding, dilation, groups=groups)
    with torch.no_grad():
        layer.bias.normal_()
    ho, wo = _out_hw(9, 8, (3, 3), (stride,) * 2, (padding,) * 2, (dilation,) * 2)
    offset = torch.zeros(2, 18, ho, wo)
    mask = torch.ones(2, 9, ho, wo)
    with torch.no_grad():
        out = layer(x, offset, mask)
        expected = F.conv2d(x, layer.weight, layer.bias, stride, padding, dilation, groups)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_integer_offset_is_a_shift_and_mask_scales() -> None:
    x = torch.randn(1, 2, 6, 7)
    weight = torch.randn(3, 2, 3, 3)
    offset = torch.zeros(1, 18, 6, 7)
    offset[:, 1::2] = 1.0  # every tap reads one pixel to the right
    mask = torch.full((1, 9, 6, 7), 0.25)
    out = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    # Reading x one pixel to the right == conv over x padded 0 left / 2 right.
    expected = 0.25 * F.conv2d(F.pad(x, (0, 2, 1, 1)), weight)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_samples_outside_image_are_zero() -> None:
    layer = ModulatedDeformConv2d(2, 3, 3)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([1.0, -2.0, 3.0]))
        out = layer(torch.randn(1, 2, 5, 5), torch.full((1, 18, 5, 5), 50.0), torch.ones(1, 9, 5, 5))
    torch.testing.assert_close(out, torch.tensor([1.0, -2.0, 3.0]).view(1, 3, 1, 1).expand(1, 3, 5, 5))


def test_gradcheck_input_offset_mask_weight() -> None:
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    # Keep away from integer positions, where bilinear sampling has kinks.
    offset = (torch.rand(1, 18, 4, 4, dtype=torch.float64) * 0.8 + 0.1) * torch.where(
        torch.rand(1, 18, 4, 4) < 0.5, -1.0, 1.0
    ).double()
    offset.requires_grad_(True)
    mask = torch.rand(1, 9, 4, 4, dtype=torch.float64, requires_grad=True)

    def fn(x, offset, mask, weight, bias):
        return modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1)

    assert torch.autograd.gradcheck(fn, (x, offset, mask, weight, bias), eps=1e-6, atol=1e-5)
    fn(x, offset, mask, weight, bias).sum().backward()
    for t in (x, offset, mask, weight):
        assert t.grad is not None and float(t.grad.abs().sum()) > 0


def test_pack_starts_as_half_scaled_conv_and_learns_offsets() -> None:
    pack = DeformConv3x3Pack(3, 5, stride=2)
    assert pack.conv_offset.weight.shape == (27, 3, 3, 3)
    assert torch.count_nonzero(pack.conv_offset.weight) == 0 and torch.count_nonzero(pack.conv_offset.bias) == 0
    with torch.no_grad():
        pack.bias.normal_()
    x = torch.randn(2, 3, 9, 8)
    out = pack(x)
    # Zero-initialised predictor: zero offsets, mask = sigmoid(0) = 0.5.
    expected = 0.5 * F.conv2d(x, pack.weight, None, 2, 1) + pack.bias.view(1, -1, 1, 1)
    assert out.shape == (2, 5, 5, 4)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    out.square().sum().backward()
    assert float(pack.conv_offset.weight.grad.abs().sum()) > 0


def test_pack_uses_mmcv_offset_mask_split() -> None:
    pack = ModulatedDeformConv2dPack(2, 3, kernel_size=3, padding=1)
    with torch.no_grad():
        pack.conv_offset.weight.normal_(0, 0.3)
    x = torch.randn(1, 2, 6, 5)
    with torch.no_grad():
        raw = pack.conv_offset(x)
        # mmcv/DCNv2: first 18 channels = offsets (dy, dx interleaved), last 9 -> sigmoid mask.
        expected = reference_dcn(x, raw[:, :18], torch.sigmoid(raw[:, 18:]), pack.weight, pack.bias)
        out = pack(x)
    torch.testing.assert_close(out, expected.float(), atol=1e-5, rtol=1e-5)


def test_bad_offset_or_mask_shape_raises() -> None:
    layer = ModulatedDeformConv2d(2, 2, 3)
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="offset shape"):
        layer(x, torch.zeros(1, 9, 5, 5), torch.ones(1, 9, 5, 5))
    with pytest.raises(ValueError, match="mask shape"):
        layer(x, torch.zeros(1, 18, 5, 5), torch.ones(1, 9, 4, 5))
