"""workbench.profile.ops: onnxruntime's profiler summed per layer kind, beside a whole call's time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from workbench.profile.export import export_onnx
from workbench.profile.ops import layer_kinds, time_per_kind


class _Net(nn.Module):
    """A dense stem, a depthwise conv, a wide 1x1 conv and an FC head: four kinds, known node by node."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 64, 1)
        self.wide = nn.Conv2d(64, 64, 1)
        self.fc = nn.Linear(64, 2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.dw(x))
        x = torch.relu(self.wide(torch.relu(self.pw(x))))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ops") / "net.onnx"
    torch.manual_seed(0)
    export_onnx(_Net().eval(), {"x": torch.randn(1, 3, 32, 32)}, path)
    return path


def test_layer_kinds_name_each_conv_by_its_channels_and_groups(onnx_path):
    kinds = set(layer_kinds(onnx_path).values())
    assert kinds == {"dense conv, < 64 channels in or out", "depthwise conv", "dense conv, >= 64 channels in and out",
                     "fully connected"}


def test_time_per_kind_sums_the_kernels_and_leaves_the_rest_as_overhead(onnx_path):
    feed = {"x": np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)}
    res = time_per_kind(onnx_path, feed, runs=20, warmup=3)
    # Every kind of the graph got kernel time; the reduce and the rest are "other (Op)".
    for k in ("dense conv, < 64 channels in or out", "depthwise conv", "dense conv, >= 64 channels in and out",
              "fully connected"):
        assert res["kinds"][k] > 0, res["kinds"]
    assert any(k.startswith("other (") for k in res["kinds"]), res["kinds"]
    assert res["kernel_us"] == pytest.approx(sum(res["kinds"].values()))
    assert res["kernel_us"] == pytest.approx(sum(res["node_us"].values()))
    # The kernels run inside the call the same session profiled; the rest of it is the overhead.
    assert res["run_us"] >= res["kernel_us"] and res["call_us"] > 0
    assert res["overhead_us"] == pytest.approx(res["run_us"] - res["kernel_us"])
    # Five weighted layers (fused activations or not) and the mean: at least six kernels per call, and the
    # kinds listed slowest first.
    assert res["nodes"] >= 6 and (res["runs"], res["threads"]) == (20, 1)
    times = list(res["kinds"].values())
    assert times == sorted(times, reverse=True)
