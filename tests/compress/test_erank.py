"""``scope="erank"``: each layer group's kept share follows the effective rank of its output."""

from __future__ import annotations

import pytest
import torch
from compress._tiny import one_thread  # noqa: F401 (autouse fixture)
from compress.test_importance import StubData
from torch import nn

from workbench.analyze.embeddings import spectrum
from workbench.compress.activations import effective_ranks
from workbench.compress.graph import build_graph, channel_groups
from workbench.compress.prune import _floor, _Selector, prune_model
from workbench.profile.quick import count_macs


class ThreeBranches(nn.Module):
    """x (16) -> low (32 units whose weight rows are copies of 2 orthogonal directions: rank 2), wide (32) and wider (64)
    random -> head on their concatenated ReLUs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.low, self.wide, self.wider = nn.Linear(16, 32), nn.Linear(16, 32), nn.Linear(16, 64)
        self.head = nn.Linear(128, 2)
        with torch.no_grad():
            dirs = torch.linalg.qr(torch.randn(16, 2))[0].T  # two orthonormal directions
            self.low.weight.copy_(dirs[torch.arange(32) % 2] * torch.linspace(0.5, 1.5, 32)[:, None])
            self.low.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(torch.cat([self.low(x), self.wide(x), self.wider(x)], 1)))


def _setup():
    model = ThreeBranches().eval()
    data = StubData(torch.randn(256, 16, generator=torch.Generator().manual_seed(1)))
    inputs = (data.x[0][:1],)
    roots = [ch.root for ch in channel_groups(build_graph(model, inputs))]
    return model, data, inputs, roots


@pytest.mark.parametrize(("measure", "key"), [("entropy", "effective_rank"), ("pr", "participation_ratio")])
def test_effective_rank_is_the_spectrum_measure_of_the_root_outputs(measure, key):
    model, data, _, roots = _setup()
    assert sorted(roots) == ["low", "wide", "wider"]
    er = effective_ranks(model, data, data, roots, measure=measure)
    with torch.no_grad():
        rows = model.wide(data.x[0]).double().numpy()
    z = (rows - rows.mean(0)) / rows.std(0)  # standardized channels
    assert er["wide"]["effective_rank"] == pytest.approx(spectrum(z)[key])
    # 32 units, two perfectly correlated blocks of 16 (positive multiples of 2 orthogonal directions, so the
    # blocks are uncorrelated up to sampling: x is isotropic): 2 by either measure.
    assert er["low"]["effective_rank"] == pytest.approx(2.0, abs=0.05)
    assert er["wide"]["effective_rank"] > 6 and er["wider"]["effective_rank"] > 6
    assert (er["low"]["width"], er["wide"]["width"], er["wider"]["width"]) == (32, 32, 64)
    assert er["low"]["rows"] == 256


@pytest.mark.parametrize("measure", ["entropy", "pr"])
def test_erank_scope_gives_the_planted_low_rank_layer_the_lowest_keep_ratio_and_meets_the_target(measure):
    model, data, inputs, roots = _setup()
    er = effective_ranks(model, data, data, roots, measure=measure)
    shares = {r: e["effective_rank"] / e["width"] for r, e in er.items()}
    originals = {r: e["width"] for r, e in er.items()}
    floors = {r: _floor(n) for r, n in originals.items()}
    before = count_macs(model, inputs)
    target = int(0.5 * before)
    out = prune_model(model, inputs, target=target, scope="erank", shares=shares, floors=floors, originals=originals)
    assert out["macs"] <= target
    kept = {"low": model.low.out_features, "wide": model.wide.out_features, "wider": model.wider.out_features}
    ratio = {r: kept[r] / originals[r] for r in kept}
    assert ratio["low"] < min(ratio["wide"], ratio["wider"]), ratio
    # The others keep shares in the order of r / n (wider: ~12 of 64, wide: ~10 of 32).
    assert shares["wider"] < shares["wide"] and ratio["wider"] < ratio["wide"], ratio
    # Every group above its floor keeps ceil(c x r) channels for one common factor c (with the participation
    # ratio none is at its floor or full; the entropy rank puts the planted layer at its floor).
    r = {g: er[g]["effective_rank"] for g in kept}
    free = [g for g in kept if floors[g] < kept[g] < originals[g]]
    assert len(free) == (3 if measure == "pr" else 2) and kept["low"] == (kept["low"] if measure == "pr" else floors["low"])
    lo, hi = max((kept[g] - 1) / r[g] for g in free), min(kept[g] / r[g] for g in free)
    assert lo < hi, (kept, r)
    # Local scope on the same model cuts every layer alike: the planted layer is not singled out.
    local = ThreeBranches().eval()
    prune_model(local, inputs, target=target, scope="local", floors={}, originals=originals)
    assert local.low.out_features / 32 == local.wide.out_features / 32 == local.wider.out_features / 64


def test_erank_selector_keeps_c_times_the_rank_and_is_monotone():
    # Two groups of 10 units, effective ranks 2 and 6: at each breakpoint c, keeps = ceil(c * r).
    ranked = {"a": (10, [(0.0, [i]) for i in range(9)]), "b": (10, [(0.0, [i]) for i in range(9)])}
    sel = _Selector(ranked, "erank", {"a": 10, "b": 10}, shares={"a": 0.2, "b": 0.6})
    assert sel(0) == {}
    removed = [{r: len(v) for r, v in sel(i).items()} for i in range(sel.n + 1)]
    for prev, cur in zip(removed, removed[1:]):
        assert all(cur.get(r, 0) >= prev.get(r, 0) for r in "ab")  # monotone: more pruning as i grows
    assert removed[-1] == {"a": 9, "b": 9}  # c = 0: every group at its floor (one unit here)
    c = 1.0  # at c = 1 each group keeps exactly its effective rank
    assert sel.keeps(c) == {"a": 2, "b": 6}
    with pytest.raises(Exception, match="expected local, global, erank"):
        _Selector(ranked, "everywhere", {})
