"""forward_hooks / capture_outputs: outputs read or replaced during a pass, hooks gone afterwards."""

import pytest
import torch
from torch import nn

from workbench.utils.hooks import capture_outputs, forward_hooks


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_capture_outputs_by_name_and_hooks_removed_after():
    net, x = _net(), torch.randn(5, 3)
    with capture_outputs([(n, m) for n, m in net.named_modules() if n]) as out:
        y = net(x)
    assert set(out) == {"0", "1", "2"}
    torch.testing.assert_close(out["2"], y)
    torch.testing.assert_close(out["1"], torch.relu(net[0](x)))
    assert all(not m._forward_hooks for m in net.modules())


def test_a_hook_may_replace_the_output_and_is_removed_on_error():
    net, x = _net(), torch.randn(5, 3)
    with forward_hooks([("0", net[0])], lambda _n, _m, _a, o: torch.zeros_like(o)):
        torch.testing.assert_close(net(x), net[2](torch.zeros(5, 4)))
    with pytest.raises(RuntimeError), forward_hooks([("0", net[0])], lambda *a: None):
        raise RuntimeError("boom")
    assert not net[0]._forward_hooks
