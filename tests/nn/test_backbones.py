"""Architecture checks for the torchvision-compatible backbones.

Parameter counts and key names/shapes are torchvision's published values; they
are what makes real torchvision checkpoints load by key.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.nn import (
    ConvBNReLU,
    InvertedResidual,
    MobileNetV2,
    ResNet,
    make_divisible,
    mobilenet_v2,
    resnet18,
    resnet50,
    resnext50_32x4d,
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------- param counts


@pytest.mark.parametrize(
    "builder, expected",
    [
        (mobilenet_v2, 3_504_872),
        (resnet18, 11_689_512),
        (resnet50, 25_557_032),
        (resnext50_32x4d, 25_028_904),
    ],
)
def test_param_count_matches_torchvision(builder, expected: int) -> None:
    assert n_params(builder()) == expected


def test_resnext50_grey_two_outputs_param_count() -> None:
    # Fixed by the research write-up: 1-channel stem, 2-output head.
    assert n_params(resnext50_32x4d(in_chans=1, num_classes=2)) == 22_977_730


def test_num_classes_zero_has_no_head() -> None:
    r = resnet18(num_classes=0)
    assert r.fc is None
    assert not any(k.startswith("fc.") for k in r.state_dict())
    assert n_params(r) == 11_689_512 - (512 * 1000 + 1000)
    m = mobilenet_v2(num_classes=0)
    assert m.classifier is None
    assert not any(k.startswith("classifier.") for k in m.state_dict())
    assert n_params(m) == 3_504_872 - (1280 * 1000 + 1000)


# ---------------------------------------------------------------- key layout

# Hand-written from torchvision's resnet.py / mobilenetv2.py: key -> shape.
RESNET18_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.weight": (64,),
    "bn1.running_mean": (64,),
    "bn1.running_var": (64,),
    "bn1.num_batches_tracked": (),
    "layer1.0.conv1.weight": (64, 64, 3, 3),
    "layer1.1.bn2.bias": (64,),
    "layer2.0.conv1.weight": (128, 64, 3, 3),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "layer2.0.downsample.1.running_var": (128,),
    "layer4.1.conv2.weight": (512, 512, 3, 3),
    "fc.weight": (1000, 512),
    "fc.bias": (1000,),
}

RESNET50_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    "layer1.0.conv3.weight": (256, 64, 1, 1),
    "layer1.0.bn3.weight": (256,),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.running_mean": (256,),
    "layer3.5.conv3.weight": (1024, 256, 1, 1),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "fc.weight": (1000, 2048),
}

RESNEXT50_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    # width = int(64 * 4/64) * 32 = 128; grouped 3x3 sees 128/32 = 4 channels.
    "layer1.0.conv1.weight": (128, 64, 1, 1),
    "layer1.0.conv2.weight": (128, 4, 3, 3),
    "layer1.0.conv3.weight": (256, 128, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer4.2.conv2.weight": (1024, 32, 3, 3),
    "fc.weight": (1000, 2048),
}

MOBILENET_V2_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.weight": (32,),
    "features.0.1.running_mean": (32,),
    # expand ratio 1: depthwise ConvBNReLU, then pointwise conv + BN.
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.0.1.weight": (32,),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.weight": (16,),
    "features.1.conv.2.running_var": (16,),
    # expand ratio 6: expand, depthwise, project, BN.
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.weight": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.running_mean": (1280,),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


@pytest.mark.parametrize(
    "builder, keys, n_keys",
    [
        (resnet18, RESNET18_KEYS, 122),
        (resnet50, RESNET50_KEYS, 320),
        (resnext50_32x4d, RESNEXT50_KEYS, 320),
        (mobilenet_v2, MOBILENET_V2_KEYS, 314),
    ],
)
def test_state_dict_keys_match_torchvision(builder, keys: dict, n_keys: int) -> None:
    sd = builder().state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    for key, shape in keys.items():
        assert key in shapes, key
        assert shapes[key] == shape, (key, shapes[key], shape)
    assert len(sd) == n_keys


def test_resnet_downsample_only_where_torchvision_has_it() -> None:
    sd18 = resnet18().state_dict()
    assert "layer1.0.downsample.0.weight" not in sd18  # 64 -> 64, stride 1: identity
    assert [k for k in sd18 if k.endswith("downsample.0.weight")] == [
        "layer2.0.downsample.0.weight",
        "layer3.0.downsample.0.weight",
        "layer4.0.downsample.0.weight",
    ]
    assert "layer1.1.downsample.0.weight" not in resnet50().state_dict()


def test_mobilenet_blocks_layout() -> None:
    m = mobilenet_v2()
    assert len(m.features) == 19
    assert isinstance(m.features[0], ConvBNReLU)
    assert all(isinstance(m.features[i], InvertedResidual) for i in range(1, 18))
    assert isinstance(m.features[0][2], nn.ReLU6)
    assert len(m.features[1].conv) == 3 and len(m.features[2].conv) == 4
    # Residual only where stride 1 and channels match (e.g. second block of a stage).
    assert not m.features[2].use_res_connect and m.features[3].use_res_connect
    assert isinstance(m.classifier[0], nn.Dropout) and m.classifier[0].p == 0.2


def test_conv_bn_relu_block() -> None:
    block = ConvBNReLU(4, 8, kernel_size=3, stride=2, groups=2)
    assert list(block.state_dict())[:2] == ["0.weight", "1.weight"]
    assert block[0].weight.shape == (8, 2, 3, 3) and block[0].bias is None
    with torch.no_grad():
        y = block(torch.randn(1, 4, 9, 9))
    assert y.shape == (1, 8, 5, 5)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 6.0


# ---------------------------------------------------------------- width options


def test_make_divisible_matches_torchvision_rounding() -> None:
    assert make_divisible(32 * 1.0, 8) == 32
    assert make_divisible(32 * 0.35, 8) == 16  # 8 would lose > 10%, so bumped
    assert make_divisible(24 * 0.75, 8) == 24  # 16 < 0.9 * 18
    assert make_divisible(1280 * 1.4, 8) == 1792
    assert make_divisible(3.0, 8) == 8


def test_mobilenet_width_mult() -> None:
    m = mobilenet_v2(width_mult=0.5, num_classes=0)
    sd = m.state_dict()
    assert sd["features.0.0.weight"].shape == (16, 3, 3, 3)
    assert sd["features.1.conv.1.weight"].shape == (8, 16, 1, 1)
    assert sd["features.18.0.weight"].shape == (1280, 160, 1, 1)  # head never narrowed
    wide = mobilenet_v2(width_mult=1.4, num_classes=10)
    assert wide.out_features == 1792
    assert wide.state_dict()["classifier.1.weight"].shape == (10, 1792)


def test_resnet_cpu_variant_widths() -> None:
    m = resnet18(widths=(16, 32, 64, 128), stem_width=16, num_classes=0)
    assert m.out_features == 128
    sd = m.state_dict()
    assert sd["conv1.weight"].shape == (16, 3, 7, 7)
    assert sd["layer4.1.conv2.weight"].shape == (128, 128, 3, 3)
    # Conv params shrink 16x when widths shrink 4x (BN and the RGB stem only 4x).
    ratio = n_params(resnet18(num_classes=0)) / n_params(m)
    assert 15.5 < ratio < 16.0
    x = torch.randn(1, 3, 64, 64)
    assert m.forward_features(x).shape == (1, 128, 2, 2)
    assert m(x).shape == (1, 128)

    # A stem narrower than stage 1 needs a projection in layer1.0.
    m2 = resnet18(widths=(32, 64, 128, 256), stem_width=16)
    assert m2.state_dict()["layer1.0.downsample.0.weight"].shape == (32, 16, 1, 1)
    nx = resnext50_32x4d(widths=(32, 64, 128, 256), stem_width=32, num_classes=0)
    assert nx.out_features == 1024
    assert nx.state_dict()["layer1.0.conv2.weight"].shape == (64, 2, 3, 3)


# ---------------------------------------------------------------- forward shapes


@pytest.mark.parametrize(
    "builder, feat_ch",
    [(resnet18, 512), (resnet50, 2048), (resnext50_32x4d, 2048), (mobilenet_v2, 1280)],
)
def test_forward_shapes(builder, feat_ch: int) -> None:
    model = builder(in_chans=1, num_classes=2).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, feat_ch, 2, 2)
    assert logits.shape == (2, 2)
    assert model.out_features == feat_ch

    headless = builder(num_classes=0).eval()
    with torch.no_grad():
        pooled = headless(torch.randn(1, 3, 64, 96))
    assert pooled.shape == (1, feat_ch)


def test_forward_is_pool_of_features_then_head() -> None:
    model = resnet18(num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.fc(model.forward_features(x).mean(dim=(2, 3)))
        torch.testing.assert_close(model(x), expected)
    mnet = mobilenet_v2(num_classes=5).eval()
    with torch.no_grad():
        expected = mnet.classifier(mnet.forward_features(x).mean(dim=(2, 3)))
        torch.testing.assert_close(mnet(x), expected)


def test_init_like_torchvision() -> None:
    m = mobilenet_v2()
    lin = m.classifier[1]
    assert torch.count_nonzero(lin.bias) == 0
    assert abs(float(lin.weight.detach().std()) - 0.01) < 0.001
    bn = m.features[0][1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    # kaiming_normal_ fan_out: std = sqrt(2 / (out_ch * k * k)).
    w = resnet50().layer3[0].conv2.weight
    expected = (2.0 / (256 * 9)) ** 0.5
    assert abs(float(w.detach().std()) - expected) < 0.05 * expected


def test_basic_block_rejects_groups() -> None:
    from workbench.nn import BasicBlock

    with pytest.raises(ValueError, match="BasicBlock"):
        ResNet(BasicBlock, (1, 1, 1, 1), groups=32, width_per_group=4)
    assert isinstance(mobilenet_v2(), MobileNetV2)
