"""Loading torchvision-format checkpoints: head dropping, grey stems, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.nn import LoadReport, load_torchvision_state_dict, mobilenet_v2, read_state_dict, resnet18


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomize_bn(model: nn.Module) -> nn.Module:
    # Fresh BN is the identity in eval mode; random stats make the trunk comparison meaningful.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model


SMALL_RESNET = dict(widths=(16, 32, 64, 128), stem_width=16)


def _save(sd: object, path: Path) -> Path:
    torch.save(sd, path)
    return path


@pytest.mark.parametrize(
    "builder, stem, head",
    [
        (resnet18, "conv1.weight", ["fc.weight", "fc.bias"]),
        (mobilenet_v2, "features.0.0.weight", ["classifier.1.weight", "classifier.1.bias"]),
    ],
)
def test_rgb_imagenet_checkpoint_into_grey_two_class_model(tmp_path: Path, builder, stem: str, head: list) -> None:
    src = _randomize_bn(builder()).eval()  # stands in for the torchvision file
    path = _save(src.state_dict(), tmp_path / "torchvision.pth")
    dst = builder(in_chans=1, num_classes=2)
    head_before = {k: v.clone() for k, v in dst.state_dict().items() if k in head}

    report = load_torchvision_state_dict(dst, path)

    assert isinstance(report, LoadReport)
    assert report.adapted == [f"{stem}: summed 3 input channels to 1"]
    assert report.dropped == head
    assert report.missing == head  # the new 2-way head keeps its own init
    assert report.unexpected == []
    dst_sd = dst.state_dict()
    torch.testing.assert_close(dst_sd[stem], src.state_dict()[stem].sum(dim=1, keepdim=True))
    for k, v in head_before.items():
        assert torch.equal(dst_sd[k], v)
    for k, v in src.state_dict().items():
        if k != stem and k not in head:
            assert torch.equal(dst_sd[k], v), k

    dst.eval()
    grey = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        got = dst.forward_features(grey)
        want = src.forward_features(grey.repeat(1, 3, 1, 1))
    assert got.shape == want.shape
    assert float(want.abs().max()) > 0.1
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_matching_head_is_kept_and_outputs_identical() -> None:
    src = _randomize_bn(resnet18(num_classes=7, **SMALL_RESNET)).eval()
    dst = resnet18(num_classes=7, **SMALL_RESNET).eval()
    report = load_torchvision_state_dict(dst, src.state_dict())
    assert report == LoadReport()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)


def test_headless_model_drops_head_without_missing_keys() -> None:
    src = resnet18(**SMALL_RESNET)
    dst = resnet18(num_classes=0, **SMALL_RESNET)
    report = load_torchvision_state_dict(dst, src.state_dict())
    assert report.dropped == ["fc.weight", "fc.bias"]
    assert report.missing == [] and report.unexpected == [] and report.adapted == []
    assert torch.equal(dst.layer4[1].conv2.weight, src.layer4[1].conv2.weight)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_and_dataparallel_checkpoints(tmp_path: Path, wrapper: str) -> None:
    src = resnet18(**SMALL_RESNET)
    wrapped = {wrapper: {"module." + k: v for k, v in src.state_dict().items()}, "epoch": 3}
    path = _save(wrapped, tmp_path / "ckpt.pth")
    sd = read_state_dict(path)
    assert set(sd) == set(src.state_dict())
    dst = resnet18(**SMALL_RESNET)
    report = load_torchvision_state_dict(dst, wrapped)  # in-memory mapping works too
    assert report == LoadReport()
    assert torch.equal(dst.conv1.weight, src.conv1.weight)


def test_old_checkpoint_without_num_batches_tracked_loads_strictly() -> None:
    src = resnet18(**SMALL_RESNET)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    dst = resnet18(**SMALL_RESNET)
    report = load_torchvision_state_dict(dst, sd)
    assert report.missing == []
    assert torch.equal(dst.bn1.running_var, src.bn1.running_var)


def test_adaptation_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    src = resnet18(**SMALL_RESNET)
    dst = resnet18(in_chans=1, num_classes=2, **SMALL_RESNET)
    with caplog.at_level(logging.INFO, logger="workbench.nn"):
        load_torchvision_state_dict(dst, src.state_dict())
    msgs = [r.getMessage() for r in caplog.records if r.name == "workbench.nn"]
    assert "conv1.weight: summed 3 input channels to 1" in msgs
    assert any("dropped 2 classifier keys" in m for m in msgs)


# ---------------------------------------------------------------- errors


def test_corrupt_file_raises_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"this is not a checkpoint \x00\x01\x02" * 10)
    with pytest.raises(ValueError, match=r"corrupt\.pth: not a readable PyTorch state dict") as info:
        load_torchvision_state_dict(resnet18(**SMALL_RESNET), bad)
    assert "\n" not in str(info.value)

    truncated = tmp_path / "truncated.pth"
    _save(resnet18(**SMALL_RESNET).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        read_state_dict(truncated)


def test_non_dict_files_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected a state dict .* got list"):
        read_state_dict(_save([torch.zeros(3)], tmp_path / "list.pth"))
    with pytest.raises(ValueError, match="expected a state dict .* got Tensor"):
        read_state_dict(_save(torch.zeros(3), tmp_path / "tensor.pth"))
    with pytest.raises(ValueError, match=r"entry 'epoch' is a int, expected a Tensor"):
        read_state_dict(_save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth"))
    with pytest.raises(ValueError, match="empty"):
        read_state_dict({})
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "nope.pth")


def test_unadaptable_shape_mismatch_names_key_and_shapes() -> None:
    narrow = resnet18(**SMALL_RESNET).state_dict()
    model = resnet18()
    before = model.layer1[0].conv1.weight.clone()
    with pytest.raises(ValueError) as info:
        load_torchvision_state_dict(model, narrow)
    msg = str(info.value)
    assert "'conv1.weight'" in msg and "(64, 3, 7, 7)" in msg and "(16, 3, 7, 7)" in msg
    assert "\n" not in msg
    assert torch.equal(model.layer1[0].conv1.weight, before)  # nothing half-loaded


def test_two_channel_stem_cannot_be_adapted() -> None:
    src = resnet18(**SMALL_RESNET).state_dict()
    with pytest.raises(ValueError, match=r"conv1\.weight: cannot adapt 3 checkpoint input channels to 2"):
        load_torchvision_state_dict(resnet18(in_chans=2, **SMALL_RESNET), src)


def test_strict_backbone_missing_and_unexpected_keys() -> None:
    sd = dict(resnet18(**SMALL_RESNET).state_dict())
    removed = sd.pop("layer3.1.conv2.weight")
    sd["extra.weight"] = torch.zeros(2)
    model = resnet18(**SMALL_RESNET)
    expected = r"1 missing backbone keys \(e\.g\. layer3\.1\.conv2\.weight\).*1 unexpected keys"
    with pytest.raises(ValueError, match=expected):
        load_torchvision_state_dict(model, sd)
    assert not torch.equal(model.conv1.weight, sd["conv1.weight"])  # untouched on error

    report = load_torchvision_state_dict(model, sd, strict_backbone=False)
    assert report.missing == ["layer3.1.conv2.weight"]
    assert report.unexpected == ["extra.weight"]
    assert torch.equal(model.conv1.weight, sd["conv1.weight"])
    assert not torch.equal(model.layer3[1].conv2.weight, removed)
