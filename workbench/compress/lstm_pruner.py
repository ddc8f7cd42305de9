"""Structural pruning of ``nn.LSTM`` (multi-layer, bidirectional, batch_first), which Torch-Pruning 1.6.1
cannot do: its LSTM pruner asserts ``num_layers == 1`` and its tracer walks into the LSTM's internal graph.

An LSTM layer stacks its four gates (i, f, g, o) in blocks of ``hidden_size`` rows, so hidden unit ``j``
of a layer and direction owns rows ``j, H + j, 2H + j, 3H + j`` of ``weight_ih``/``weight_hh``/biases and
column ``j`` of ``weight_hh``; the next layer reads ``[forward h, reverse h]``, i.e. columns ``j`` and
``H + j`` of its ``weight_ih``. Removing a unit removes all of those at once, so gate blocks stay aligned.
``nn.LSTM`` has one ``hidden_size`` for every layer and direction: each keeps the same number of units,
but which units is chosen per layer and direction.

Torch-Pruning sees an LSTM through :class:`LSTMPruner` (registered as a customized pruner) with
  * in-channels: ``input_size`` (columns of layer 0's ``weight_ih``, both directions);
  * out-channels: the output features ``directions * H`` of the last layer, which the following layer reads.
Out-channel pruning removes the given last-layer units and, in every inner layer and direction, the same
number of units with the smallest incoming weights (L2 over their gate rows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch_pruning as tp
from torch import nn

__all__ = [
    "LSTMPruner",
    "lstm_input_importance",
    "lstm_unit_importance",
    "prune_lstm_hidden",
    "prune_lstm_input",
    "traceable_lstms",
]


def _suffixes(lstm: nn.LSTM) -> tuple[str, ...]:
    return ("", "_reverse") if lstm.bidirectional else ("",)


def _check(lstm: nn.Module) -> None:
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(f"expected nn.LSTM, got {type(lstm).__name__}")
    if getattr(lstm, "proj_size", 0):
        raise NotImplementedError("pruning an LSTM with proj_size is not supported")


def _gate_rows(units: torch.Tensor, hidden: int) -> torch.Tensor:
    """Rows of the stacked (i, f, g, o) gate blocks that belong to ``units``: (4 * len(units),)."""
    return torch.cat([units + g * hidden for g in range(4)])


def _replace(lstm: nn.LSTM, name: str, value: torch.Tensor) -> None:
    old = getattr(lstm, name)
    # RNNBase.__setattr__ keeps ``_flat_weights`` in step with the registered parameters.
    setattr(lstm, name, nn.Parameter(value.contiguous(), requires_grad=old.requires_grad))


def prune_lstm_hidden(lstm: nn.LSTM, keep: Sequence[Sequence[Sequence[int]]]) -> nn.LSTM:
    """Keep hidden units ``keep[layer][direction]`` (every list the same length H'); in place.

    Shapes: weight_ih_l{l} (4H, in_l) -> (4H', in_l'), weight_hh_l{l} (4H, H) -> (4H', H'), biases (4H,) -> (4H',),
    where in_l' = directions * H' for l > 0 (the previous layer's kept units, forward then reverse).
    """
    _check(lstm)
    dirs = _suffixes(lstm)
    h = lstm.hidden_size
    if len(keep) != lstm.num_layers or any(len(k) != len(dirs) for k in keep):
        raise ValueError(f"expected keep[{lstm.num_layers}][{len(dirs)}] unit lists, got "
                         f"{[len(k) for k in keep]}")
    kept = [[torch.as_tensor(sorted({int(u) for u in units}), dtype=torch.long) for units in layer] for layer in keep]
    sizes = {len(units) for layer in kept for units in layer}
    if len(sizes) != 1:
        raise ValueError(f"every layer and direction must keep the same number of units, got {sorted(sizes)}")
    new_h = sizes.pop()
    if new_h < 1:
        raise ValueError("an LSTM must keep at least one hidden unit")
    if any(int(units.min()) < 0 or int(units.max()) >= h for layer in kept for units in layer):
        raise ValueError(f"hidden unit indices must lie in [0, {h})")
    new: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            if layer > 0:  # columns of the previous layer's kept units, forward block then reverse block
                cols = torch.cat([units + d * h for d, units in enumerate(kept[layer - 1])])
            for d, sfx in enumerate(dirs):
                units = kept[layer][d]
                rows = _gate_rows(units, h)
                w_ih = getattr(lstm, f"weight_ih_l{layer}{sfx}")[rows]
                if layer > 0:
                    w_ih = w_ih[:, cols]
                new[f"weight_ih_l{layer}{sfx}"] = w_ih
                new[f"weight_hh_l{layer}{sfx}"] = getattr(lstm, f"weight_hh_l{layer}{sfx}")[rows][:, units]
                if lstm.bias:
                    for kind in ("ih", "hh"):
                        new[f"bias_{kind}_l{layer}{sfx}"] = getattr(lstm, f"bias_{kind}_l{layer}{sfx}")[rows]
    for name, value in new.items():
        _replace(lstm, name, value)
    lstm.hidden_size = new_h
    return lstm


def prune_lstm_input(lstm: nn.LSTM, drop: Sequence[int]) -> nn.LSTM:
    """Remove input features ``drop`` (columns of layer 0's weight_ih, every direction); in place."""
    _check(lstm)
    drop_set = {int(i) for i in drop}
    keep = torch.as_tensor([i for i in range(lstm.input_size) if i not in drop_set], dtype=torch.long)
    if len(keep) == 0:
        raise ValueError("an LSTM must keep at least one input feature")
    with torch.no_grad():
        for sfx in _suffixes(lstm):
            name = f"weight_ih_l0{sfx}"
            _replace(lstm, name, getattr(lstm, name)[:, keep])
    lstm.input_size = len(keep)
    return lstm


def _unit_scores(lstm: nn.LSTM, layer: int, sfx: str, *, grads: bool) -> torch.Tensor:
    """(H,) per-unit score of one layer and direction over its incoming weights (gate rows):
    sum of w^2 (magnitude) or sum of |w * dL/dw| (first-order Taylor)."""
    h = lstm.hidden_size
    total = torch.zeros(h)
    for name in (f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"):
        w = getattr(lstm, name)
        if grads:
            if w.grad is None:
                raise ValueError(f"{name} has no gradient; run a backward pass before Taylor importance")
            per_row = (w.detach() * w.grad).abs().sum(1)
        else:
            per_row = w.detach().pow(2).sum(1)
        total += per_row.view(4, h).sum(0).float().cpu()
    return total


def lstm_unit_importance(lstm: nn.LSTM, *, grads: bool = False) -> torch.Tensor:
    """(directions * H,) score of each last-layer output feature (forward units, then reverse units)."""
    _check(lstm)
    last = lstm.num_layers - 1
    return torch.cat([_unit_scores(lstm, last, sfx, grads=grads) for sfx in _suffixes(lstm)])


def lstm_input_importance(lstm: nn.LSTM, *, grads: bool = False) -> torch.Tensor:
    """(input_size,) score of each input feature over layer 0's weight_ih columns, every direction."""
    _check(lstm)
    total = torch.zeros(lstm.input_size)
    for sfx in _suffixes(lstm):
        w = getattr(lstm, f"weight_ih_l0{sfx}")
        if grads:
            if w.grad is None:
                raise ValueError(f"weight_ih_l0{sfx} has no gradient; run a backward pass before Taylor importance")
            total += (w.detach() * w.grad).abs().sum(0).float().cpu()
        else:
            total += w.detach().pow(2).sum(0).float().cpu()
    return total


class LSTMPruner(tp.pruner.function.BasePruningFunc):
    """Torch-Pruning pruning function for ``nn.LSTM`` (register with ``customized_pruners={nn.LSTM: LSTMPruner()}``).

    Out-channel indices address the last layer's output features ``[0, directions * H)``: forward units
    first, then reverse units; each direction must lose the same number of units.
    """

    TARGET_MODULES = (nn.LSTM,)

    def prune_out_channels(self, layer: nn.LSTM, idxs: Sequence[int]) -> nn.LSTM:
        _check(layer)
        h, dirs = layer.hidden_size, len(_suffixes(layer))
        drops = [sorted(int(i) - d * h for i in idxs if d * h <= int(i) < (d + 1) * h) for d in range(dirs)]
        if len({len(d) for d in drops}) != 1:
            raise ValueError(f"each LSTM direction must lose the same number of units, got {[len(d) for d in drops]}")
        n = len(drops[0])
        if n == 0:
            return layer
        keep = []
        for li in range(layer.num_layers):
            per_dir = []
            for d, sfx in enumerate(_suffixes(layer)):
                if li == layer.num_layers - 1:
                    drop = set(drops[d])
                else:  # an inner layer: drop its n weakest units (no index outside the LSTM addresses them)
                    scores = _unit_scores(layer, li, sfx, grads=False)
                    drop = set(torch.argsort(scores, stable=True)[:n].tolist())
                per_dir.append([u for u in range(h) if u not in drop])
            keep.append(per_dir)
        return prune_lstm_hidden(layer, keep)

    def prune_in_channels(self, layer: nn.LSTM, idxs: Sequence[int]) -> nn.LSTM:
        return prune_lstm_input(layer, idxs)

    def get_out_channels(self, layer: nn.LSTM) -> int:
        return layer.hidden_size * len(_suffixes(layer))

    def get_in_channels(self, layer: nn.LSTM) -> int:
        return layer.input_size

    def get_out_channel_groups(self, layer: nn.LSTM) -> int:
        return len(_suffixes(layer))


class _Opaque(torch.autograd.Function):
    """Ties an LSTM's output to its input with a single autograd node (for graph tracing only)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None


@contextlib.contextmanager
def traceable_lstms(model: nn.Module) -> Iterator[None]:
    """While active, every ``nn.LSTM`` of ``model`` is one autograd node from its input to its output.

    Torch-Pruning traces a model by walking the autograd graph from the outputs; through an LSTM it
    would walk the recurrent cell's internals (cat/transpose/MkldnnRnnLayer nodes) and couple channels
    that have nothing to do with each other. The outputs are computed exactly; only the graph changes.
    """
    patched = []

    def make_forward(lstm: nn.LSTM):
        def forward(x, hx=None):
            with torch.no_grad():
                out, state = nn.LSTM.forward(lstm, x, hx)
            if isinstance(x, torch.Tensor) and x.requires_grad:
                out = _Opaque.apply(x, out)
            return out, state
        return forward

    for m in model.modules():
        if isinstance(m, nn.LSTM):
            m.forward = make_forward(m)
            patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward
