"""Torch-Pruning's dependency graph for the workbench's models, with the fixes they need.

:func:`build_graph` traces a model with ``torch_pruning.DependencyGraph`` and corrects what it gets wrong:
  * LSTMs: traced as one node and pruned by :class:`~workbench.compress.lstm_pruner.LSTMPruner`;
  * broadcast multiplies: ``features * weight_map`` with a (B, 1, H, W) map broadcast over C channels is
    an element-wise op to Torch-Pruning, which couples the map's single channel with the C feature
    channels (so pruning the features tries to prune the 1-channel conv, and the feature group ends up
    rooted at a 1-channel layer and is never pruned). The edge from the broadcast operand is cut: the map
    stays 1 channel while the features are pruned (also EVG's attention-pooled global context);
  * flatten-then-concat: ``cat([branch.flatten(1) for branch in branches])`` (iTracker's four eye
    branches into one FC). Torch-Pruning sizes each concat input by its conv's channel count, not by its
    flattened length, so the offsets come out wrong: it couples all branches into one group and maps
    their channels to the wrong FC columns. The concat sizes and flatten strides are set from the traced
    shapes instead;
  * heads: the layers whose outputs reach a model output through parameter-free ops only are never
    pruned (their output width is the task's contract).
:func:`channel_groups` lists what can be pruned: one :class:`Channels` per dependency group, with the
candidate units (index sets removed together) and the group's constraints.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.dependency.index_mapping import _FlattenIndexMapping

from workbench.compress.lstm_pruner import LSTMPruner, traceable_lstms

__all__ = ["ROOT_TYPES", "Channels", "PruneGraph", "build_graph", "channel_groups"]

ROOT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
              nn.Linear, nn.LSTM)
_LAYER_TYPES = ROOT_TYPES + (nn.Embedding,)
_BROADCAST_OPS = ("MulBackward0", "DivBackward0")


@dataclass
class PruneGraph:
    """A traced model: the dependency graph, its heads and the broadcast edges that were cut."""

    model: nn.Module
    DG: tp.DependencyGraph
    heads: list[str]
    cut: list[tuple[str, str]] = field(default_factory=list)

    def name(self, module: nn.Module) -> str:
        return self.DG._module2name.get(module, type(module).__name__)


@dataclass
class Channels:
    """One prunable dependency group, addressed by its root layer's output channels.

    ``units[i]`` is a set of root out-channel indices removed together (one per channel group of a
    grouped conv, one per direction of a bidirectional LSTM); ``width`` is the root's channel count.
    """

    root: str
    width: int
    units: list[list[int]]
    layout: str  # "plain" | "grouped" (same position in each of `parts` groups) | "directions" (LSTM)
    parts: int
    group: object  # the tp Group with every index (for importance)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1 and m.groups == m.out_channels == m.in_channels


def build_graph(model: nn.Module, inputs: Sequence[torch.Tensor]) -> PruneGraph:
    """Trace ``model`` on ``inputs`` (its positional inputs, batch >= 1) into a corrected dependency graph.

    The model is put in eval mode (as Torch-Pruning does) so dropout and batch statistics stay fixed.
    """
    model.eval()
    DG = tp.DependencyGraph()
    outputs: list = []

    def forward(m: nn.Module, x: tuple) -> object:
        outputs.append(m(*x))
        return outputs[-1]

    with traceable_lstms(model), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DG.build_dependency(model, example_inputs=tuple(inputs), forward_fn=forward,
                            customized_pruners={nn.LSTM: LSTMPruner()}, verbose=False)
    graph = PruneGraph(model=model, DG=DG, heads=[])
    graph.cut = _cut_broadcast_edges(graph)
    _fix_flatten_concats(graph)
    roots = {id(t.grad_fn) for t in tp.utils.flatten_as_list(outputs[-1]) if isinstance(t, torch.Tensor)}
    graph.heads = _find_heads(graph, roots)
    return graph


def _channel_dim(node, rank: int) -> int:
    """The dim Torch-Pruning prunes in a tensor produced by ``node``: 1 behind a conv or BatchNorm
    ((B, C, ...), also after flatten(2)), the last behind a Linear/LSTM/Embedding ((B, T, F))."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n.module, (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)):
            return 1
        if isinstance(n.module, (nn.Linear, nn.LSTM, nn.Embedding, nn.LayerNorm)):
            return rank - 1
        stack.extend(n.inputs)
    return 1


def _cut_broadcast_edges(graph: PruneGraph) -> list[tuple[str, str]]:
    """Remove the dependency between a multiply/divide and an operand broadcast over the channel dim."""
    cut = []
    for node in list(graph.DG.module2node.values()):
        grad_fn = node.grad_fn
        if node.type != tp.ops.OPTYPE.ELEMENTWISE or grad_fn is None or grad_fn.name() not in _BROADCAST_OPS:
            continue
        try:
            shapes = [tuple(grad_fn._saved_self.shape), tuple(grad_fn._saved_other.shape)]
        except (AttributeError, RuntimeError):
            continue
        rank = max(len(s) for s in shapes)
        if rank < 2:
            continue
        shapes = [(1,) * (rank - len(s)) + s for s in shapes]
        operands = [grad_fn.next_functions[i][0] for i in range(2)]
        inputs = [next((n for n in node.inputs if n.grad_fn is fn), None) for fn in operands]
        for narrow, wide in ((0, 1), (1, 0)):
            if inputs[narrow] is None or inputs[wide] is None:
                continue
            dim = _channel_dim(inputs[wide], rank)
            if shapes[narrow][dim] == 1 and shapes[wide][dim] > 1:
                _disconnect(node, inputs[narrow])
                cut.append((str(inputs[narrow].name), str(node.name)))
    return cut


def _out_shape(grad_fn) -> tuple[int, ...] | None:
    """The forward output shape of the op behind ``grad_fn`` (from autograd's input metadata)."""
    try:
        return tuple(grad_fn._input_metadata[0].shape)
    except (AttributeError, IndexError, RuntimeError):
        return None


def _fix_flatten_concats(graph: PruneGraph) -> None:
    """Give concats of flattened maps their true sizes and each flatten its stride (see module doc)."""
    reshape, concat = tp.ops.OPTYPE.RESHAPE, tp.ops.OPTYPE.CONCAT
    for node in list(graph.DG.module2node.values()):
        if node.type != concat or not any(n.type == reshape for n in node.inputs):
            continue
        out = _out_shape(node.grad_fn)
        if out is None or len(out) != 2 or getattr(node.grad_fn, "_saved_dim", None) not in (1, 2**64 - 1):
            continue
        sizes = [(_out_shape(n.grad_fn) or (None, None))[-1] for n in node.inputs]
        if None in sizes or sum(sizes) != out[1]:
            continue  # an input without gradient (a constant) is not a node: leave it to Torch-Pruning
        node.module.concat_sizes = list(sizes)
        for flat in node.inputs:
            src = getattr(flat.grad_fn, "_saved_self_sym_sizes", None)
            if flat.type != reshape or src is None or len(src) < 3:
                continue
            stride = math.prod(int(d) for d in src[2:])
            if stride <= 1 or int(src[1]) * stride != _out_shape(flat.grad_fn)[-1]:
                continue
            # Torch-Pruning recomputes reshape mappings before every group from the concat's total (512 for four
            # 128-wide branches: stride 64, not 16); marking the node element-wise keeps the mapping set here.
            flat.type = tp.ops.OPTYPE.ELEMENTWISE
            for feeder in flat.inputs:
                for dep in flat.dependencies:
                    if dep.target is feeder:
                        dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=True)
                for dep in feeder.dependencies:
                    if dep.target is flat:
                        dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=False)


def _disconnect(a, b) -> None:
    """Drop every edge and dependency between nodes ``a`` and ``b``."""
    for x, y in ((a, b), (b, a)):
        x.inputs = [n for n in x.inputs if n is not y]
        x.outputs = [n for n in x.outputs if n is not y]
        x.dependencies = [d for d in x.dependencies if d.target is not y and d.source is not y]


def _find_heads(graph: PruneGraph, output_fns: set[int]) -> list[str]:
    """Names of the layers that feed a model output through parameter-free ops only.

    ``output_fns``: ids of the outputs' grad_fns (an output may be a layer's own result, with no output node).
    """
    heads: list[str] = []
    outputs = [n for n in graph.DG.module2node.values()
               if n.type == tp.ops.OPTYPE.OUTPUT or id(n.grad_fn) in output_fns]
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, _LAYER_TYPES):
            name = graph.name(node.module)
            if name not in heads:
                heads.append(name)
            continue
        stack.extend(node.inputs)
    return sorted(heads)


def _parts(graph: PruneGraph, group) -> tuple[int, str]:
    """How the root's channels split into parts that must shrink together: (parts, layout)."""
    DG = graph.DG
    parts, layout = 1, "plain"
    root = group[0].dep.target.module
    for dep, _ in group:
        m = dep.target.module
        if not isinstance(m, nn.Module) or _is_depthwise(m):
            continue
        pruner = DG.get_pruner_of_module(m)
        if pruner is None:
            continue
        if DG.is_out_channel_pruning_fn(dep.handler):
            g = pruner.get_out_channel_groups(m)
        elif DG.is_in_channel_pruning_fn(dep.handler):
            g = pruner.get_in_channel_groups(m)
        else:
            continue
        if g > parts:
            parts = g
            layout = "directions" if isinstance(m, nn.LSTM) and m is root else "grouped"
    return parts, layout


def channel_groups(graph: PruneGraph, *, ignored: Sequence[str] = ()) -> list[Channels]:
    """Every prunable dependency group of ``graph`` (heads and ``ignored`` layers excluded)."""
    DG = graph.DG
    skip = set(graph.heads) | set(ignored)
    ignored_modules = [m for n, m in graph.model.named_modules() if n in skip]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        groups = list(DG.get_all_groups(ignored_layers=ignored_modules, root_module_types=ROOT_TYPES))
    for group in groups:
        root = group[0].dep.target.module
        width = DG.get_out_channels(root)
        if width is None or width < 2:
            continue
        parts, layout = _parts(graph, group)
        if width % parts:
            continue
        size = width // parts
        if layout == "directions":  # units are filled in by the ranking (per-direction order)
            units = [[p + d * size for d in range(parts)] for p in range(size)]
        else:
            units = [[p + g * size for g in range(parts)] for p in range(size)]
        out.append(Channels(root=graph.name(root), width=width, units=units, layout=layout, parts=parts, group=group))
    return out
