"""Pruning criteria are registered importance objects: a new one is one class plus one registration."""

from __future__ import annotations

import pytest
import torch
from compress._tiny import one_thread, tiny, tiny_inputs  # noqa: F401 (autouse fixture)
from torch import nn

from workbench.compress import importance as I
from workbench.compress.activations import _ChannelScore, channel_rank_scores
from workbench.compress.graph import build_graph, channel_groups
from workbench.compress.prune import prune_model
from workbench.errors import WorkbenchError


class StubData:
    """The two things a data-driven criterion asks of the pruner's calibration TaskData and its Task."""

    def __init__(self, *inputs: torch.Tensor) -> None:
        self.x = inputs

    def __len__(self) -> int:
        return len(self.x[0])

    def batch(self, idx):
        return tuple(t[idx] for t in self.x)

    @staticmethod
    def inputs(batch):
        return batch


class PlantedNet(nn.Module):
    """conv1 (8 channels: 2 and 5 dead, 6 a constant map) -> conv2 -> pooled -> fc1 (12 units: 3 and 7
    dead) -> head. Group roots: conv1, conv2, fc1."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.fc1, self.head = nn.Linear(8, 12), nn.Linear(12, 2)
        with torch.no_grad():
            self.conv1.weight[[2, 5, 6]] = 0.0
            self.conv1.bias[[2, 5]] = 0.0
            self.conv1.bias[6] = 0.7
            self.fc1.weight[[3, 7]] = 0.0
            self.fc1.bias[[3, 7]] = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(torch.relu(self.fc1(x.mean((2, 3)))))


def test_the_registered_criteria_and_a_bad_name():
    assert I.IMPORTANCES == ("magnitude", "taylor", "lamp", "rank")
    assert isinstance(I.get_importance("taylor"), I.TaylorImportance) and I.get_importance("taylor").needs_grads
    with pytest.raises(WorkbenchError, match="unknown importance 'entropy'; expected magnitude, taylor, lamp, rank or fc:FILE"):
        I.get_importance("entropy")


def test_a_new_criterion_is_one_class_and_decides_what_goes():
    @I.register_importance
    class KeepLast(I.Importance):
        """Higher channel index = more important: the first channels go."""

        name = "test-keep-last"

        def __call__(self, graph, ch):
            return torch.arange(ch.width, dtype=torch.float32) + 1.0

    try:
        model = tiny("gazelstm")
        x = tiny_inputs("gazelstm")
        before = model.last_layer.weight.detach().clone()
        prune_model(model, tuple(t[:1] for t in x), target=0, fixed={"lstm": 4},
                    scorer=I.get_importance("test-keep-last"))
        assert model.lstm.hidden_size == 4
        # the kept hidden units are the last four of each direction (inputs of the head: [fwd | bwd])
        half = before.shape[1] // 2
        kept = torch.cat([before[:, half - 4:half], before[:, -4:]], dim=1)
        torch.testing.assert_close(model.last_layer.weight, kept)
        with pytest.raises(ValueError, match="already registered"):
            I.register_importance(KeepLast)
    finally:
        I._REGISTRY.pop("test-keep-last", None)


def test_map_rank_is_tolerant_to_float_noise_and_tiny_maps_score_by_variance():
    g = torch.Generator().manual_seed(0)
    full = torch.randn(4, 6, 6, generator=g)
    low = torch.einsum("bri,brj->bij", torch.randn(4, 2, 6, generator=g), torch.randn(4, 2, 6, generator=g))
    maps = torch.stack([full, low + 1e-6 * torch.randn(4, 6, 6, generator=g), torch.zeros(4, 6, 6)], 1)
    conv = nn.Conv2d(1, 3, 1)
    s = _ChannelScore()
    s.add(conv, maps)  # (4 samples, 3 channels, 6, 6)
    # (+ at most 1e-4 of relative variance, which only breaks ties); LAPACK's default tolerance says 6, not 2
    torch.testing.assert_close(s.result(), torch.tensor([6.0, 2.0, 0.0]), atol=1.1e-4, rtol=0)
    one = _ChannelScore()
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])  # 1x1 maps: rank would be 1 for both; variance tells them apart
    one.add(conv, x[:, :, None, None])
    torch.testing.assert_close(one.result(), torch.tensor([1.0, 0.0]))


def test_rank_importance_puts_dead_and_constant_channels_last_and_prunes_them():
    model = PlantedNet().eval()
    data = StubData(torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    scorer = I.get_importance("rank")
    assert isinstance(scorer, I.RankImportance) and scorer.needs_data and not scorer.needs_grads
    scorer.prepare(model, data, data)
    graph = build_graph(model, (data.x[0][:1],))
    chans = {ch.root: ch for ch in channel_groups(graph)}
    assert set(chans) == {"conv1", "conv2", "fc1"}
    conv1 = scorer(graph, chans["conv1"])
    assert sorted(torch.argsort(conv1)[:2].tolist()) == [2, 5] and conv1[[2, 5]].max() == 0
    assert int(torch.argsort(conv1)[2]) == 6  # a constant map has rank 1, every live one more
    assert conv1.mean() == pytest.approx(1.0)  # normalized per group, like the other criteria
    fc1 = scorer(graph, chans["fc1"])  # Linear units: variance over samples
    assert sorted(torch.argsort(fc1)[:2].tolist()) == [3, 7] and fc1[[3, 7]].max() == 0
    raw = channel_rank_scores(model, data, data, ["conv1"])["conv1"]
    assert raw[[0, 1, 3, 4, 7]].min() >= 2 and raw[6] == pytest.approx(1, abs=1e-4)  # honest ranks, not an order
    prune_model(model, (data.x[0][:1],), target=0, fixed={"conv1": 5, "fc1": 10}, scorer=scorer)
    assert model.conv1.out_channels == 5 and model.fc1.out_features == 10
    assert (model.conv1.weight.flatten(1).abs().sum(1) > 0).all()  # the dead and the constant went
    assert (model.fc1.weight.abs().sum(1) > 0).all()


def test_rank_importance_scores_lstm_hidden_units_by_output_variance():
    model = tiny("gazelstm")
    x = tiny_inputs("gazelstm", batch=6)
    h = model.lstm.hidden_size  # 8 per direction
    with torch.no_grad():  # output gate shut: units 1, 5 (forward) and 2, 6 (backward) of the top layer output 0
        model.lstm.bias_ih_l1[3 * h + torch.tensor([1, 5])] = -1e4
        model.lstm.bias_ih_l1_reverse[3 * h + torch.tensor([2, 6])] = -1e4
    data = StubData(*x)
    scorer = I.get_importance("rank")
    scorer.prepare(model, data, data)
    s = scorer.scores["lstm"]
    assert len(s) == 2 * h and sorted(torch.argsort(s)[:4].tolist()) == [1, 5, h + 2, h + 6]
    prune_model(model, tuple(t[:1] for t in x), target=0, fixed={"lstm": 6}, scorer=scorer)
    assert model.lstm.hidden_size == 6
    assert model.lstm.bias_ih_l1.min() > -1e3 and model.lstm.bias_ih_l1_reverse.min() > -1e3


def test_equal_ranks_are_ordered_by_variance():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(5, 3, 4, 4, generator=g) * torch.tensor([1.0, 3.0, 0.5])[None, :, None, None]
    s = _ChannelScore()
    s.add(nn.Conv2d(1, 3, 1), maps)  # all full rank (4): the spread decides
    assert torch.argsort(s.result()).tolist() == [2, 0, 1]
