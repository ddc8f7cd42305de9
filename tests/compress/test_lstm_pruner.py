"""The LSTM pruner: removing hidden units (or input features) whose weights are zero changes nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.compress.graph import build_graph
from workbench.compress.lstm_pruner import (
    LSTMPruner,
    prune_lstm_hidden,
    prune_lstm_input,
    traceable_lstms,
)


def _silence_units(lstm: nn.LSTM, drop: list[list[list[int]]]) -> None:
    """Zero the incoming weights and biases of units drop[layer][direction]: their h stays exactly 0."""
    h = lstm.hidden_size
    sfx = ("", "_reverse") if lstm.bidirectional else ("",)
    with torch.no_grad():
        for layer, per_dir in enumerate(drop):
            for d, units in enumerate(per_dir):
                rows = torch.cat([torch.tensor(units) + g * h for g in range(4)])
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(lstm, f"{name}_l{layer}{sfx[d]}")[rows] = 0.0


class SeqNet(nn.Module):
    """Linear -> LSTM -> last step -> Linear head: the shape of gazelstm's tail."""

    def __init__(self, bidirectional: bool = True, batch_first: bool = True, num_layers: int = 3) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.proj = nn.Linear(5, 6)
        self.lstm = nn.LSTM(6, 8, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
        self.head = nn.Linear(8 * (2 if bidirectional else 1), 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.proj(x)
        if not self.batch_first:
            y = y.transpose(0, 1)
        out, _ = self.lstm(y)
        last = out[:, -1] if self.batch_first else out[-1]
        return {"y": self.head(last)}


@pytest.mark.parametrize("bidirectional,batch_first,num_layers", [(True, True, 3), (False, False, 2), (True, False, 1)])
def test_pruning_zero_units_keeps_outputs(bidirectional, batch_first, num_layers):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 8, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    dirs = 2 if bidirectional else 1
    # Different units in every layer and direction, the same count (nn.LSTM has one hidden_size).
    sets = [[0, 3, 7], [1, 4, 6], [2, 5, 7], [0, 5, 6], [1, 2, 3], [4, 6, 7]]
    drop = [[sets[(2 * layer + d) % len(sets)] for d in range(dirs)] for layer in range(num_layers)]
    _silence_units(lstm, drop)
    head = nn.Linear(8 * dirs, 3)
    x = torch.randn(4, 7, 6) if batch_first else torch.randn(7, 4, 6)
    ref = head(lstm(x)[0])

    keep = [[[u for u in range(8) if u not in units] for units in per_dir] for per_dir in drop]
    prune_lstm_hidden(lstm, keep)
    last_cols = torch.cat([torch.tensor(k) + d * 8 for d, k in enumerate(keep[-1])])
    with torch.no_grad():
        head.weight = nn.Parameter(head.weight[:, last_cols])
    assert lstm.hidden_size == 5
    assert lstm.weight_hh_l0.shape == (20, 5)
    if num_layers > 1:
        assert lstm.weight_ih_l1.shape == (20, 5 * dirs)
    torch.testing.assert_close(head(lstm(x)[0]), ref)


def test_pruning_input_features_with_zero_columns_keeps_outputs():
    torch.manual_seed(1)
    lstm = nn.LSTM(6, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 5, 6)
    x[..., [1, 4]] = 0.0  # features that are always zero (e.g. a pruned upstream unit's output)
    ref = lstm(x)[0]
    prune_lstm_input(lstm, [1, 4])
    assert lstm.input_size == 4 and lstm.weight_ih_l0_reverse.shape == (16, 4)
    torch.testing.assert_close(lstm(x[..., [0, 2, 3, 5]])[0], ref)


def test_torch_pruning_group_prunes_lstm_and_its_neighbours():
    """Through the dependency graph: the head's input columns follow the LSTM's last-layer units, the
    upstream Linear's outputs follow the LSTM's input columns, and inner layers drop their silent units."""
    torch.manual_seed(2)
    net = SeqNet().eval()
    drop = [[[1, 6], [0, 3]], [[2, 5], [4, 7]], [[0, 1], [2, 6]]]  # per layer, per direction
    _silence_units(net.lstm, drop)
    with torch.no_grad():  # upstream unit 3 outputs exactly 0, so LSTM input feature 3 carries nothing
        net.proj.weight[3] = 0.0
        net.proj.bias[3] = 0.0
    x = torch.randn(4, 7, 5)
    ref = net(x)["y"]

    graph = build_graph(net, (x[:1],))
    DG = graph.DG
    assert graph.heads == ["head"]
    pruner = DG.get_pruner_of_module(net.lstm)
    assert isinstance(pruner, LSTMPruner)
    last = drop[-1]
    idxs = last[0] + [8 + u for u in last[1]]  # output features: forward units, then reverse units
    group = DG.get_pruning_group(net.lstm, pruner.prune_out_channels, idxs)
    assert DG.check_pruning_group(group)
    group.prune()
    group = DG.get_pruning_group(net.proj, DG.get_pruner_of_module(net.proj).prune_out_channels, [3])
    group.prune()

    assert net.lstm.hidden_size == 6 and net.lstm.input_size == 5
    assert net.head.in_features == 12 and net.head.out_features == 3
    assert net.proj.out_features == 5
    torch.testing.assert_close(net(x)["y"], ref)


def test_directions_must_lose_the_same_number_of_units():
    lstm = nn.LSTM(3, 4, bidirectional=True, batch_first=True)
    with pytest.raises(ValueError, match="same number"):
        LSTMPruner().prune_out_channels(lstm, [0, 1, 5])


def test_traceable_lstms_keeps_outputs_and_restores_forward():
    torch.manual_seed(3)
    net = SeqNet().eval()
    x = torch.randn(2, 7, 5)
    ref = net(x)["y"]
    with traceable_lstms(net):
        traced = net(x)["y"]
        assert traced.grad_fn is not None
    torch.testing.assert_close(traced, ref)
    assert "forward" not in vars(net.lstm)
