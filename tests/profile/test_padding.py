"""Padding-aware sizes: the EVG write-up's examples, and the MACs spent on padding, measured."""

import pytest
import torch
from torch import nn

from workbench.data.geometry import pad_to_stride
from workbench.errors import WorkbenchError
from workbench.profile import count_total
from workbench.profile.padding import network_size, padding_macs, parse_size
from workbench.profile.target import profile_teacher
from workbench.tasks import get_task


@pytest.mark.parametrize("raw,padded", [((480, 270), [512, 288]), ((640, 360), [672, 384])])
def test_write_up_sizes(raw, padded):
    info = network_size(raw)
    assert info["padded"] == padded and info["raw"] == list(raw)
    # The same rule as the task that feeds EVG its frames.
    assert list(get_task("plane_pog").padded(*raw)) == padded


def test_resize_keeps_aspect_then_pads():
    info = network_size((1920, 1080), resize=640)
    assert info["resized"] == [640, 360] and info["padded"] == [672, 384]
    assert network_size((1920, 1080), resize=480)["padded"] == [512, 288]
    assert network_size((100, 50), stride=16)["padded"] == list(pad_to_stride(100, 50, 16))


@pytest.mark.parametrize("bad", ["480", "480x", "0x270", "480x270x3", "axb"])
def test_bad_sizes_are_user_errors(bad):
    with pytest.raises(WorkbenchError, match="WIDTHxHEIGHT"):
        parse_size(bad)


class _FullyConv(nn.Module):
    """Stride-1 convs (cost per pixel b = 3*4*9 + 4*6*9 = 324) + global pool + Linear(6, 2) (fixed a = 12)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(),
                                  nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.body(x))


def test_padding_macs_match_a_direct_count_at_the_raw_size():
    model = _FullyConv()

    def count(w, h):
        return count_total(model, {"x": torch.zeros(1, 3, h, w)})

    raw, padded = (50, 30), (64, 32)
    pad = padding_macs(count, raw, padded, 32)
    # This model runs at any size, so the raw-size equivalent can be checked against a real count.
    assert pad["macs_raw_equivalent"] == count(*raw) == 12 + 324 * 50 * 30
    assert pad["macs_padding"] == count(*padded) - count(*raw) == 324 * (64 * 32 - 50 * 30)
    assert pad["macs_fixed"] == 12 and pad["macs_per_pixel"] == pytest.approx(324)
    assert pad["linear_check"]["rel_error"] == 0


def test_evg_counts_at_the_padded_size():
    r = profile_teacher("evg", "cpu", image=(480, 270), depth=1)
    img = r["image"]
    assert img["padded"] == [512, 288] and img["raw"] == [480, 270]
    assert r["input_shapes"]["frame"] == [1, 3, 288, 512]
    assert r["macs"] == img["macs_padded"]
    assert img["macs_padding"] == r["macs"] - img["macs_raw_equivalent"] > 0
    # EVG is fully convolutional but for the cpu preset's context read-out (two Linear layers, the same at
    # any size): the padding share is the area share of the rest.
    enc, ctx = 128, 16
    assert img["macs_fixed"] == (enc + 2) * ctx + ctx * 2
    assert img["padding_fraction"] == pytest.approx(1 - 480 * 270 / (512 * 288), rel=1e-4)
    assert any("512x288" in n for n in r["notes"])


def test_evg_defaults_to_its_training_frame():
    r = profile_teacher("evg", "cpu", depth=0)  # the cpu recipe renders 480x270 frames
    assert r["image"]["raw"] == [480, 270] and r["image"]["padded"] == [512, 288]


def test_crop_model_has_no_padding():
    r = profile_teacher("gazenet", "cpu", image=(640, 480), depth=0)
    assert r["image"]["macs_padding"] == 0 and r["image"]["padded"] is None
    assert r["input_shapes"]["face"] == [1, 3, 112, 112]
    assert "resized" in r["notes"][-1]


def test_an_explicit_frame_input_is_not_replaced_by_the_default_frame():
    from workbench.profile.target import profile_target, resolve_target

    r = profile_target(resolve_target("evg", input_specs=["frame=3x96x128"]), depth=0)
    assert r["input_shapes"]["frame"] == [1, 3, 96, 128] and "image" not in r
