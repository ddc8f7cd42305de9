"""Latency-aware pruning: what a model, and each of its prunable layer groups, costs in time on the runtime.

MACs do not say where the time goes: on a CPU runtime a depthwise conv at high resolution is memory-bound
(few MACs, much time), a channel count off the kernels' block size pays for the block it starts, and a small
FC layer costs almost nothing whatever its width. So the pruner measures instead of counting:

- :class:`LatencyMeter` times a candidate against the unpruned model in onnxruntime, the two in alternation
  on one thread (the median CPU time of the calling thread, which leaves out the time other processes held
  the core), and reports the candidate's time as the reference's first measured time times their ratio in
  that loop; ``--target-latency`` searches the pruning amount with it, as ``--target-macs`` does with MACs.
- :func:`latency_table` cuts each group to half its units, one copy per group, and times them all in one
  loop: the time each group's removed units saved, per unit. In global scope the pruner divides every
  unit's importance by its group's saving (relative to the mean), so units whose removal saves time go first.
  The savings do not add up across groups (cutting several changes how the runtime schedules the rest), so
  the table ranks and the search times real candidates; ``benchmarks/latency.py`` measures the outcome.
- :func:`measure_pair` times the result beside the original for the summary.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["RUNTIME", "LatencyMeter", "latency_table", "measure_pair", "time_models"]

RUNTIME = "onnxruntime"


def _named(model: nn.Module, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    names = list(getattr(model, "input_names", None) or [f"input_{i}" for i in range(len(inputs))])
    return dict(zip(names, inputs))


def _export(model: nn.Module, inputs: Sequence[torch.Tensor], path: Path) -> Path:
    from workbench.profile.export import export_onnx

    export_onnx(model.eval(), _named(model, inputs), path)
    return path


def _feed(model: nn.Module, inputs: Sequence[torch.Tensor], batch: int) -> dict[str, np.ndarray]:
    idx = torch.arange(batch) % len(inputs[0])
    return {k: v[idx].numpy() for k, v in _named(model, inputs).items()}


def _time(paths: Mapping[str, Path], feed: dict[str, np.ndarray], threads: int, repeats: int) -> dict[str, float]:
    from workbench.compress.quantize import latency

    lat = latency(dict(paths), feed, threads=threads, warmup=10, repeats=repeats)
    key = "cpu_median_ms" if threads == 1 else "median_ms"
    return {k: float(v[key]) for k, v in lat.items()}


def latency_table(model: nn.Module, inputs: Sequence[torch.Tensor], *, round_to: int = 1, batch: int = 1,
                  threads: int = 1, repeats: int = 100) -> dict[str, Any]:
    """Per prunable group, the time saved per removed unit on onnxruntime (see the module docstring).

    ``inputs`` are the model's positional inputs (a real batch; its first rows are repeated to ``batch``).
    Returns {"runtime", "threads", "batch", "repeats", "teacher_ms", "groups": {root: {"units", "removed",
    "ms", "saved_ms", "saved_ms_per_unit"}}}; a negative saving (timing noise) counts as 0 per unit.
    """
    from workbench.compress.graph import build_graph, channel_groups
    from workbench.compress.prune import _round_up, prune_model

    x1 = tuple(t[:1] for t in inputs)
    groups = {c.root: len(c.units) for c in channel_groups(build_graph(model, x1))}
    cut: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="wb-latency-") as tmp:
        paths = {"": _export(model, x1, Path(tmp) / "base.onnx")}
        for i, (root, units) in enumerate(groups.items()):
            keep = _round_up(max(1, units // 2), round_to, units)
            if keep >= units:
                continue
            trial = copy.deepcopy(model)
            prune_model(trial, x1, target=0, fixed={root: keep}, round_to=round_to)
            paths[root] = _export(trial, x1, Path(tmp) / f"g{i}.onnx")
            cut[root] = units - keep
        ms = _time(paths, _feed(model, inputs, batch), threads, repeats)
    base = ms.pop("")
    table = {}
    for root, units in groups.items():
        if root not in cut:
            table[root] = {"units": units, "removed": 0, "ms": None, "saved_ms": None, "saved_ms_per_unit": 0.0}
            continue
        saved = base - ms[root]
        table[root] = {"units": units, "removed": cut[root], "ms": ms[root], "saved_ms": saved,
                       "saved_ms_per_unit": max(0.0, saved) / cut[root]}
    return {"runtime": RUNTIME, "threads": threads, "batch": batch, "repeats": repeats, "teacher_ms": base,
            "groups": table}


class LatencyMeter:
    """Times models against one reference (the unpruned model) in onnxruntime: each call exports the model
    and runs it and the reference in alternation, and returns the reference's first measured time scaled by
    the ratio of the two in that loop, so load on a shared machine changes both alike and cancels out.
    ``calls`` counts the models timed (each costs an export and ``repeats`` rounds)."""

    def __init__(self, reference: nn.Module, inputs: Sequence[torch.Tensor], *, batch: int = 1, threads: int = 1,
                 repeats: int = 100) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="wb-latency-")
        self.dir = Path(self._tmp.name)
        self.inputs = tuple(inputs)
        self.batch, self.threads, self.repeats = batch, threads, repeats
        self.reference = _export(copy.deepcopy(reference), tuple(t[:1] for t in inputs), self.dir / "reference.onnx")
        self.feed = _feed(reference, inputs, batch)
        self.reference_ms = _time({"r": self.reference}, self.feed, threads, repeats)["r"]
        self.calls = 0

    def __call__(self, model: nn.Module) -> float:
        self.calls += 1
        path = _export(copy.deepcopy(model), tuple(t[:1] for t in self.inputs), self.dir / f"m{self.calls}.onnx")
        ms = _time({"r": self.reference, "m": path}, self.feed, self.threads, self.repeats)
        path.unlink()
        return self.reference_ms * ms["m"] / ms["r"]

    def close(self) -> None:
        self._tmp.cleanup()


def measure_pair(teacher: nn.Module, pruned: nn.Module, inputs: Sequence[torch.Tensor], *, batch: int = 1,
                 threads: int = 1, repeats: int = 100) -> dict[str, float]:
    """Teacher and pruned model timed side by side in onnxruntime: {"teacher_ms", "pruned_ms", "speedup"}."""
    x1 = tuple(t[:1] for t in inputs)
    with tempfile.TemporaryDirectory(prefix="wb-latency-") as tmp:
        paths = {"teacher": _export(copy.deepcopy(teacher), x1, Path(tmp) / "teacher.onnx"),
                 "pruned": _export(copy.deepcopy(pruned), x1, Path(tmp) / "pruned.onnx")}
        ms = _time(paths, _feed(teacher, inputs, batch), threads, repeats)
    return {"teacher_ms": ms["teacher"], "pruned_ms": ms["pruned"], "speedup": ms["teacher"] / ms["pruned"]}


def time_models(models: Mapping[str, nn.Module | Path], inputs: Sequence[torch.Tensor], *, input_names: Sequence[str],
                batch: int = 1, threads: int = 1, repeats: int = 100) -> dict[str, float]:
    """Milliseconds per batch of every model in onnxruntime, all timed in one alternating loop (so load on a
    shared machine hits all alike): PyTorch modules are exported first, paths are ONNX files (e.g. int8 ones).

    ``inputs`` are the positional inputs of every model (a real batch; its rows are repeated to ``batch``),
    fed under ``input_names``. On one thread the figure is the calling thread's CPU time (see
    :func:`workbench.compress.quantize.latency`)."""
    idx = torch.arange(batch) % len(inputs[0])
    feed = {k: v[idx].numpy() for k, v in zip(input_names, inputs)}
    x1 = tuple(t[:1] for t in inputs)
    with tempfile.TemporaryDirectory(prefix="wb-latency-") as tmp:
        paths = {}
        for i, (label, m) in enumerate(models.items()):
            paths[label] = Path(m) if isinstance(m, (str, Path)) else _export(copy.deepcopy(m), x1, Path(tmp) / f"m{i}.onnx")
        return _time(paths, feed, threads, repeats)
