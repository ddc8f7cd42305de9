"""Channel importance for pruning: Torch-Pruning's criteria, LSTM-aware, plus FC-layer scores from analysis.

``magnitude`` (group L2), ``taylor`` (group first-order Taylor |w * dL/dw|, gradients of the task loss)
and ``lamp`` (L2 with LAMP normalization) come from ``torch_pruning.importance``; Torch-Pruning scores no
LSTM, so an LSTM in a group adds its own term (its gate rows for hidden units, its input columns for input
features; see :mod:`workbench.compress.lstm_pruner`). ``fc`` uses the per-unit scores of an
``fc_importance.json`` (written by ``workbench analyze fc-importance``) for the Linear layers it covers and
magnitude elsewhere. ``rank`` scores channels by what they compute on calibration samples (HRank's mean
feature-map rank; the activation variance for Linear/LSTM units; see :mod:`workbench.compress.activations`).
Scores are normalized per group (divided by the group mean, or LAMP), so one global
ranking compares channels of different layers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from workbench.compress.graph import Channels, PruneGraph
from workbench.compress.lstm_pruner import lstm_input_importance, lstm_unit_importance
from workbench.errors import WorkbenchError
from workbench.utils.registry import ClassRegistry

__all__ = ["IMPORTANCES", "FCImportance", "FCScores", "Importance", "LampImportance", "MagnitudeImportance",
           "RankImportance", "TaylorImportance", "get_importance", "load_fc_scores", "rank_units", "register_importance"]



@dataclass
class FCScores:
    """Per-unit scores of Linear layers from an fc_importance.json, tracked through pruning.

    ``kept[layer]`` maps the layer's current output channels to its original ones.
    """

    path: str
    scores: dict[str, torch.Tensor]
    criteria: dict[str, str]
    kept: dict[str, list[int]]

    def current(self, layer: str, width: int) -> torch.Tensor | None:
        """(width,) scores of ``layer``'s current channels, or None if the file does not cover it."""
        if layer not in self.scores or len(self.kept[layer]) != width:
            return None
        return self.scores[layer][self.kept[layer]]

    def removed(self, layer: str, idxs: list[int]) -> None:
        if layer in self.kept:
            drop = set(idxs)
            self.kept[layer] = [o for i, o in enumerate(self.kept[layer]) if i not in drop]


def load_fc_scores(path: str | Path, model: nn.Module, model_config: dict[str, Any]) -> FCScores:
    """Read an fc_importance.json and check that it describes ``model`` (same config, same layer widths)."""
    from workbench.analyze.fc_importance import load_fc_importance

    path = Path(path)
    doc = load_fc_importance(path)
    if "model" not in doc:
        raise WorkbenchError(f"{path}: not an fc_importance.json (expected keys 'model' and 'layers')")
    if doc["model"] != model_config:
        theirs = doc["model"].get("teacher", doc["model"]) if isinstance(doc["model"], dict) else doc["model"]
        ours = model_config.get("teacher", "?")
        raise WorkbenchError(f"{path}: importance file is for another model ({json.dumps(theirs)[:80]}, "
                             f"not this run's {ours!r} with its config)")
    modules = dict(model.named_modules())
    scores, criteria = {}, {}
    for name, entry in doc["layers"].items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            raise WorkbenchError(f"{path}: layer {name!r} is not a Linear layer of this model")
        if not isinstance(entry, dict) or "scores" not in entry:
            raise WorkbenchError(f"{path}: layer {name!r} has no 'scores'")
        if entry.get("is_head"):
            continue  # heads are never pruned
        criterion = entry.get("default") or next(iter(entry["scores"]), None)
        values = entry["scores"].get(criterion)
        if values is not None and any(v is None for v in values):
            raise WorkbenchError(f"{path}: layer {name!r} has unscored units for criterion {criterion!r}")
        if values is None or len(values) != layer.out_features:
            got = None if values is None else len(values)
            raise WorkbenchError(f"{path}: layer {name!r} needs {layer.out_features} {criterion!r} scores, got {got}")
        t = torch.tensor(values, dtype=torch.float32)
        if not torch.isfinite(t).all():
            raise WorkbenchError(f"{path}: layer {name!r} has non-finite scores")
        scores[name], criteria[name] = t, criterion
    return FCScores(str(path), scores, criteria, {k: list(range(len(v))) for k, v in scores.items()})


class Importance:
    """A pruning criterion, one verb: ``importance(graph, ch)`` -> (width,) importance of a group's root
    channels (higher = keep), normalized per group so one global ranking compares layers. The base scores
    by Torch-Pruning's group criterion plus the LSTM terms it lacks. ``needs_grads``: the pruner puts the
    task loss's gradients on the parameters first. ``needs_data``: the pruner calls
    ``prepare(model, task, data)`` with its calibration samples before scoring each step. Adding a
    criterion is one subclass with ``@register_importance``."""

    name: str = ""
    needs_grads: bool = False
    needs_data: bool = False
    normalizer: str = "mean"  # or "lamp"

    def __init__(self) -> None:
        self._tp = self._tp_importance()(normalizer=None)

    def _tp_importance(self) -> type:
        return tp.importance.GroupMagnitudeImportance

    def __call__(self, graph: PruneGraph, ch: Channels) -> torch.Tensor:
        parts = []
        tp_imp = self._tp(ch.group)
        if tp_imp is not None:
            parts.append(tp_imp.float().cpu())
        parts += _lstm_terms(graph, ch, grads=self.needs_grads)
        if not parts:
            return torch.ones(ch.width)
        return _normalize(torch.stack(parts).mean(0), self.normalizer)

    def prepare(self, model: nn.Module, task: Any, data: Any) -> None:
        """Look at the (current) ``model`` on calibration ``data`` (a TaskData of ``task``) before a step's
        scoring; called only when ``needs_data``."""

    def removed(self, layer: str, idxs: list[int]) -> None:
        """Channels ``idxs`` of ``layer`` were pruned (a criterion holding per-channel state follows)."""


_REGISTRY = ClassRegistry("pruning importance")


def register_importance(cls: type[Importance]) -> type[Importance]:
    """Class decorator: register a pruning criterion under ``cls.name`` (``--importance NAME``)."""
    return _REGISTRY.register(cls)


@register_importance
class MagnitudeImportance(Importance):
    """Group L2 norm of the weights."""

    name = "magnitude"


@register_importance
class TaylorImportance(Importance):
    """Group first-order Taylor |w * dL/dw|, gradients of the task loss."""

    name, needs_grads = "taylor", True

    def _tp_importance(self) -> type:
        return tp.importance.GroupTaylorImportance


@register_importance
class LampImportance(Importance):
    """Group L2 with LAMP normalization."""

    name, normalizer = "lamp", "lamp"


@register_importance
class RankImportance(Importance):
    """HRank (Lin et al., 2020): a channel of a conv group's root scores the mean matrix rank of its H x W
    output map over the calibration samples (a rank-0 map is dead, a low-rank one carries little); a
    Linear or LSTM unit (a scalar per sample, whose rank is 0 or 1) and a map of height or width 1 score
    their activation variance instead. Scores are per group root, recomputed on the current model at every
    step; a group whose root did not run scores by magnitude."""

    name, needs_data = "rank", True

    def __init__(self) -> None:
        super().__init__()
        self.scores: dict[str, torch.Tensor] = {}

    def prepare(self, model: nn.Module, task: Any, data: Any) -> None:
        from workbench.compress.activations import channel_rank_scores
        from workbench.compress.graph import build_graph, channel_groups

        inputs = tuple(t[:1] for t in task.inputs(data.batch(torch.arange(1))))
        roots = [ch.root for ch in channel_groups(build_graph(model, inputs))]
        self.scores = channel_rank_scores(model, task, data, roots)

    def __call__(self, graph: PruneGraph, ch: Channels) -> torch.Tensor:
        scores = self.scores.get(ch.root)
        if scores is None or len(scores) != ch.width:
            return super().__call__(graph, ch)
        return _normalize(scores.clone(), "mean")


class FCImportance(Importance):
    """Per-unit scores of an fc_importance.json for the Linear layers it covers; magnitude elsewhere."""

    name = "fc"

    def __init__(self, fc: FCScores) -> None:
        super().__init__()
        self.fc = fc

    def __call__(self, graph: PruneGraph, ch: Channels) -> torch.Tensor:
        scores = self.fc.current(ch.root, ch.width)
        if scores is not None:
            return _normalize(scores.clone(), "mean")
        return super().__call__(graph, ch)

    def removed(self, layer: str, idxs: list[int]) -> None:
        self.fc.removed(layer, idxs)


IMPORTANCES = tuple(_REGISTRY)  # magnitude, taylor, lamp, rank (and fc:FILE)


def get_importance(spec: str, model: nn.Module | None = None, model_config: dict[str, Any] | None = None) -> Importance:
    """The criterion ``spec`` names: a registered name, or ``fc:FILE`` (checked against ``model``)."""
    if spec.startswith("fc:"):
        return FCImportance(load_fc_scores(spec[3:], model, model_config or {}))
    if spec not in _REGISTRY:
        raise WorkbenchError(f"unknown importance {spec!r}; expected {', '.join(_REGISTRY)} or fc:FILE")
    return _REGISTRY[spec]()


def _lstm_terms(graph: PruneGraph, ch: Channels, *, grads: bool) -> list[torch.Tensor]:
    out = []
    DG = graph.DG
    for item in ch.group:
        dep, idxs, roots = item.dep, item.idxs, item.root_idxs
        m = dep.target.module
        if not isinstance(m, nn.LSTM) or any(r is None for r in roots):
            continue
        if DG.is_out_channel_pruning_fn(dep.handler):
            local = lstm_unit_importance(m, grads=grads)
        elif DG.is_in_channel_pruning_fn(dep.handler):
            local = lstm_input_importance(m, grads=grads)
        else:
            continue
        term = torch.zeros(ch.width)
        term.scatter_add_(0, torch.tensor(roots, dtype=torch.long), local[torch.tensor(idxs, dtype=torch.long)])
        out.append(term)
    return out


def _normalize(imp: torch.Tensor, how: str) -> torch.Tensor:
    if how == "lamp":
        return tp.importance.GroupMagnitudeImportance()._lamp(imp.clone())
    mean = imp.mean()
    return imp / mean if mean > 0 else imp


def rank_units(ch: Channels, imp: torch.Tensor, floor: int) -> list[tuple[float, list[int]]]:
    """The units of ``ch`` that may go, weakest first, as (score, root indices); ``floor`` units always stay.

    A unit's score is the mean over its indices (grouped convs: the same position in every group). For a
    bidirectional LSTM each direction is ordered on its own and the r-th weakest of each are paired, so
    both directions keep the same number of units without tying unit j of one to unit j of the other.
    """
    n = len(ch.units)
    if ch.layout == "directions":
        size = ch.width // ch.parts
        orders = [torch.argsort(imp[d * size:(d + 1) * size], stable=True) + d * size for d in range(ch.parts)]
        units = [[int(o[r]) for o in orders] for r in range(size)]
    else:
        units = ch.units
    scored = [(float(imp[u].mean()), u) for u in units]
    if ch.layout != "directions":
        scored.sort(key=lambda s: s[0])
    # Directions: pairs of r-th order statistics already come in non-decreasing score order.
    keep = max(1, min(n, floor))
    return [(s if math.isfinite(s) else 0.0, u) for s, u in scored[: n - keep]]
