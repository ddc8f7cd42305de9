"""Iterative structural pruning of a trained run: prune a step, fine-tune through the engine, repeat.

    run folder -> load_run_model -> for step s in 1..K:
        trace (Torch-Pruning DependencyGraph + the fixes of :mod:`workbench.compress.graph`)
        -> score every prunable channel group (:class:`~workbench.compress.importance.Importance`)
        -> remove the globally weakest units until MACs (or params) <= the step's target
           orig - (orig - R * orig) * s / K (bisection on the number of units removed; channels are
           physically removed, so the count is of the real, smaller model)
        -> fine-tune E epochs with workbench.train.engine.fit, keep its best checkpoint
    -> a run folder whose config.json holds {"pruned": {...}} (rebuilt by build_model, no pickled modules).

Every prunable group keeps at least ``min_keep`` of its original units (and one unit); heads keep their width.
With ``round_to`` m > 1 every group of at least 2m units keeps a multiple of m (rounded up, so the step
removes fewer units and the search takes more of the others): the runtimes' kernels (onnxruntime's MLAS,
oneDNN) pack channels in blocks of 4-16, and a width like 171 pays for the block it starts. Smaller groups
are pruned unit by unit.
``scope="erank"`` sets the layer budget from analysis: each group keeps c x r units, r the effective rank
(``erank_measure``: entropy, or the participation ratio) of its root's output on the calibration samples
(:mod:`workbench.compress.activations`),
one factor c for all groups found by the same bisection, so redundant (over-wide) layers shrink most.
MACs are counted by :func:`workbench.profile.quick.count_macs` (LSTMs included) at batch 1 on the task's
real input shapes.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.compress.activations import ERANK_MEASURES, effective_ranks, erank_record
from workbench.compress.graph import Channels, build_graph, channel_groups
from workbench.compress.importance import Importance, MagnitudeImportance, get_importance, rank_units
from workbench.compress.prune_data import accumulate_grads, calibration_sample, finetune, recalibrate_batchnorm
from workbench.compress.pruned import pruned_config
from workbench.errors import WorkbenchError
from workbench.profile.quick import count_macs
from workbench.progress import progress_bar
from workbench.train.models import count_params
from workbench.train.recipes import Recipe
from workbench.train.run_folder import save_checkpoint
from workbench.utils.io import atomic_path, ensure_new_dir
from workbench.utils.jsonio import write_json

__all__ = ["SCOPES", "apply_selection", "prune", "prune_model", "recalibrate_batchnorm"]

MIN_KEEP = 0.1  # every group keeps at least this fraction of its original units
ROUND_TO = 8  # kept widths are multiples of this (groups of at least twice as many units); 1 = any width
SCOPES = ("local", "global", "erank")


# ---- the pruning step, on a model in memory -----------------------------------------------------------------

def apply_selection(model: nn.Module, inputs: tuple[torch.Tensor, ...], selection: dict[str, list[int]]) -> None:
    """Remove out-channels ``selection[root layer name]`` and everything that depends on them; in place."""
    if not selection:
        return
    graph = build_graph(model, inputs)
    DG = graph.DG
    for root, idxs in selection.items():
        module = model.get_submodule(root)
        pruner = DG.get_pruner_of_module(module)
        group = DG.get_pruning_group(module, pruner.prune_out_channels, sorted(set(idxs)))
        if not DG.check_pruning_group(group):
            raise RuntimeError(f"pruning {len(idxs)} channels of {root} would remove a whole layer")
        group.prune()


def _measure(model: nn.Module, inputs: tuple[torch.Tensor, ...], what: str, meter: Callable | None = None) -> float:
    """MACs, params, or the model's time (ms) as ``meter`` (a :class:`~workbench.compress.latency_cost.LatencyMeter`)
    measures it."""
    if what == "latency":
        return meter(model)
    return count_macs(model, inputs) if what == "macs" else count_params(model)


def _ranked(graph, chans: list[Channels], scorer: Importance, floors: dict[str, int], fixed: dict[str, int] | None,
            table: dict | None = None):
    """Per group root, its removable units weakest first: {root: [(score, indices), ...]}.

    With a latency ``table`` every score is divided by its group's time saved per unit (relative to the
    groups' mean), so a global ranking removes first the units that cost little accuracy per millisecond."""
    ranked = {}
    costs = _relative_costs(table) if table else {}
    for ch in chans:
        if fixed is not None and ch.root not in fixed:
            continue
        imp = scorer(graph, ch)
        floor = fixed[ch.root] if fixed is not None else floors.setdefault(ch.root, _floor(len(ch.units)))
        rows = rank_units(ch, imp, floor)
        if table:
            cost = costs.get(ch.root, 0.0)
            rows = [(score / max(cost, 1e-3), units) for score, units in rows]
        ranked[ch.root] = (len(ch.units), rows)
    return ranked


def _relative_costs(table: dict) -> dict[str, float]:
    """Each group's measured saving per unit over the mean of the groups that save anything."""
    per_unit = {r: g["saved_ms_per_unit"] for r, g in table["groups"].items()}
    positive = [v for v in per_unit.values() if v > 0]
    mean = sum(positive) / len(positive) if positive else 1.0
    return {r: v / mean for r, v in per_unit.items()}


def _floor(units: int, keep: float = MIN_KEEP, round_to: int = 1) -> int:
    return _round_up(max(1, math.ceil(keep * units)), round_to, units)


def _round_up(keep: int, round_to: int, original: int) -> int:
    """``keep`` units rounded up to a multiple of ``round_to`` for a group of ``original`` units, never above
    ``original``; a group of fewer than 2 x round_to units rounds to the largest power of two that is at
    most half of it (8 -> 4), so it can still shrink."""
    while round_to > 1 and original < 2 * round_to:
        round_to //= 2
    if round_to <= 1:
        return keep
    return min(original, round_to * math.ceil(keep / round_to))


class _Selector:
    """Maps a pruning amount i in [0, n] to a selection {root: indices}, monotone in i.

    ``global``: i is the number of units removed, the weakest over all groups (scores normalized per group).
    ``local``: i / n is the fraction of its original units every group loses (its weakest ones), so
    each layer shrinks alike and the importance only decides which channels go.
    ``erank``: group g keeps ceil(c x shares[g] x its original units), c falling with i through every value
    at which some group's count changes (i = 0 keeps all); shares[g] = r / width, so it keeps c x r channels.
    """

    STEPS = 1000

    def __init__(self, ranked: dict, scope: str, originals: dict[str, int], round_to: int = 1,
                 shares: dict[str, float] | None = None) -> None:
        self.ranked, self.scope, self.originals, self.round_to = ranked, scope, originals, round_to
        self.shares = shares or {}
        if scope == "global":
            flat = [(score, gi, pos, root, units) for gi, (root, (_, rows)) in enumerate(ranked.items())
                    for pos, (score, units) in enumerate(rows)]
            self.flat = sorted(flat, key=lambda r: (r[0], r[1], r[2]))
            self.n = len(self.flat)
        elif scope == "local":
            self.n = self.STEPS if any(rows for _, rows in ranked.values()) else 0
        elif scope == "erank":
            # Group g drops to j units as c passes j / a_g (a_g = share x units): one breakpoint per unit.
            self.slopes = {r: self.shares.get(r, 1.0) * self.originals.get(r, cur) for r, (cur, _) in ranked.items()}
            cuts = {j / a for r, a in self.slopes.items() if a > 0 for j in range(ranked[r][0])}
            self.cs = sorted(cuts, reverse=True)
            self.n = 1 + len(self.cs) if any(rows for _, rows in ranked.values()) else 0
        else:
            raise WorkbenchError(f"unknown pruning scope {scope!r}; expected {', '.join(SCOPES)}")

    def keeps(self, c: float) -> dict[str, int]:
        """``erank``: units each group keeps at factor ``c`` (before floors and rounding)."""
        return {r: min(cur, math.ceil(c * a - 1e-9)) for r, a in self.slopes.items()
                for cur in (self.ranked[r][0],)}

    def __call__(self, i: int) -> dict[str, list[int]]:
        if self.scope == "global":
            removed: dict[str, int] = {}
            for _, _, _, root, _ in self.flat[:i]:
                removed[root] = removed.get(root, 0) + 1
        elif self.scope == "erank":
            if i == 0:
                return {}
            removed = {r: self.ranked[r][0] - k for r, k in self.keeps(self.cs[min(i, len(self.cs)) - 1]).items()}
        else:
            frac = i / self.STEPS
            removed = {root: current - math.ceil(self.originals.get(root, current) * (1.0 - frac) - 1e-9)
                       for root, (current, _) in self.ranked.items()}
        sel: dict[str, list[int]] = {}
        for root, n in removed.items():
            current, rows = self.ranked[root]
            keep = _round_up(current - min(len(rows), max(0, n)), self.round_to, self.originals.get(root, current))
            for _, units in rows[:max(0, current - keep)]:
                sel.setdefault(root, []).extend(units)
        return sel


def _pruned_copy(model: nn.Module, inputs, selection) -> nn.Module:
    trial = copy.deepcopy(model)
    apply_selection(trial, inputs, selection)
    return trial


def prune_model(model: nn.Module, inputs: tuple[torch.Tensor, ...], *, target: int, what: str = "macs",
                scorer: Importance | None = None, scope: str = "local", floors: dict[str, int] | None = None,
                originals: dict[str, int] | None = None, fixed: dict[str, int] | None = None,
                smallest: int | None = None, round_to: int = 1, table: dict | None = None,
                meter: Callable | None = None, shares: dict[str, float] | None = None) -> dict[str, Any]:
    """One pruning step in place: remove the weakest units until ``what`` (macs | params) <= ``target``.

    ``scope``: local (every group loses the same fraction of its ``originals`` units), global (one
    ranking over all groups) or erank (group g keeps c x ``shares[g]`` of its ``originals`` units, one c for
    all; shares default to 1). ``floors``: units each group keeps at least. ``fixed`` instead prunes only the
    named group roots, each to exactly that many units (no target). ``smallest``: ``what`` with every
    group at its floor, when already known. ``round_to``: kept widths are multiples of it (see the module
    docstring). ``meter`` times a model for ``what="latency"``; ``table`` (per-group latency savings, see
    :mod:`workbench.compress.latency_cost`) weights a global ranking. Returns {"removed": {root: n indices}, "macs", "params"}.
    Raises WorkbenchError when the target is below what the floors allow.
    """
    scorer = scorer or MagnitudeImportance()
    floors = {} if floors is None else floors
    graph = build_graph(model, inputs)
    chans = channel_groups(graph)
    if fixed is not None:
        missing = sorted(set(fixed) - {c.root for c in chans})
        if missing:
            roots = ", ".join(c.root for c in chans)
            raise WorkbenchError(f"no prunable layer group named {missing}; groups (by their first layer): {roots}")
    ranked = _ranked(graph, chans, scorer, floors, fixed, table if scope == "global" else None)
    select = _Selector(ranked, "global" if fixed is not None else scope, originals or {}, round_to, shares)
    if fixed is not None:
        k = select.n
    else:
        k = _search(lambda i: _measure(_pruned_copy(model, inputs, select(i)), inputs, what, meter),
                    select.n, target, _measure(model, inputs, what, meter), smallest)
    selection = select(k)
    if fixed is None and select.scope == "local" and round_to > 1 and k > 0:
        selection = _between(model, inputs, what, target, select(k - 1), selection, meter)
    for root, idxs in selection.items():
        scorer.removed(root, idxs)
    apply_selection(model, inputs, selection)
    return {"removed": {r: len(i) for r, i in selection.items()}, "macs": count_macs(model, inputs),
            "params": count_params(model)}


def _between(model: nn.Module, inputs, what: str, target: float, above: dict[str, list[int]],
             below: dict[str, list[int]], meter: Callable | None = None) -> dict[str, list[int]]:
    """The least pruning between two selections that meets ``target``: ``above`` misses it, ``below`` (one
    step further) meets it. With rounded widths, one step of the local fraction can move many groups at once
    (every 16-wide group goes to 8 at exactly half), overshooting the target by far; here the groups that
    differ move one at a time, those losing the most units first, until the target is met."""
    moved = sorted((r for r in below if len(below[r]) != len(above.get(r, []))),
                   key=lambda r: len(above.get(r, [])) - len(below[r]))

    def mix(j: int) -> dict[str, list[int]]:
        return {**above, **{r: below[r] for r in moved[:j]}}

    measure = lambda j: _measure(_pruned_copy(model, inputs, mix(j)), inputs, what, meter)  # noqa: E731
    # ``below`` met the target when the search measured it: it stays the fallback (a latency measured again
    # may come out a little above it; timings are noisy, MACs are not).
    return mix(_search(measure, len(moved), target, measure(0), target))


def _search(measure: Callable[[int], int], n: int, target: int, at_zero: int, at_n: int | None) -> int:
    """The smallest k in [0, n] with measure(k) <= target, for measure non-increasing in k (bisection;
    interpolating on the count took more calls: the first units removed are the cheap ones)."""
    if at_zero <= target:
        return 0
    at_n = measure(n) if at_n is None else at_n
    if at_n > target:
        raise WorkbenchError(f"cannot reach {target:,} in this step (at most {at_n:,})")
    lo, hi = 0, n  # measure(lo) > target >= measure(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def smallest_reachable(model: nn.Module, inputs, *, what: str, floors: dict[str, int], round_to: int = 1,
                       meter: Callable | None = None) -> float:
    """``what`` of the model with every prunable group cut to its floor (the most pruning allows)."""
    trial = copy.deepcopy(model)
    graph = build_graph(trial, inputs)
    chans = channel_groups(graph)
    ones = MagnitudeImportance()
    select = _Selector(_ranked(graph, chans, ones, floors, None), "global", {c.root: len(c.units) for c in chans},
                       round_to)
    apply_selection(trial, inputs, select(select.n))
    return _measure(trial, inputs, what, meter)


# ---- the command: a run folder in, a run folder out ---------------------------------------------------------

def _check_args(target_macs, target_params, layers, steps, finetune_epochs, calib_samples,
                target_latency=None) -> tuple[str, float | None]:
    given = [n for n, v in (("--target-macs", target_macs), ("--target-params", target_params), ("--layers", layers),
                            ("--target-latency", target_latency)) if v is not None]
    if len(given) != 1:
        raise WorkbenchError("give exactly one of --target-macs, --target-params, --target-latency or --layers, "
                             f"got {given or 'none'}")
    ratio = next((r for r in (target_macs, target_params, target_latency) if r is not None), None)
    if ratio is not None and not 0.0 < ratio <= 1.0:
        raise WorkbenchError(f"{given[0]} must be a ratio of the original in (0, 1], got {ratio}")
    for name, r in (layers or {}).items():
        if not 0.0 < r < 1.0:
            raise WorkbenchError(f"--layers {name}={r}: expected a kept fraction in (0, 1)")
    if steps < 1:
        raise WorkbenchError(f"--steps must be >= 1, got {steps}")
    if finetune_epochs < 0:
        raise WorkbenchError(f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    if calib_samples < 1:
        raise WorkbenchError(f"--calib-samples must be >= 1, got {calib_samples}")
    what = ("macs" if target_macs is not None else "params" if target_params is not None
            else "latency" if target_latency is not None else "layers")
    return what, ratio


def _amount(value: float, what: str) -> str:
    return f"{value:.3f} ms" if what == "latency" else f"{int(value):,}"


@dataclass
class _Schedule:
    """What each step prunes to: a MACs/params target falling linearly to the final one, or, with ``fixed``
    ({root: final units}), those groups shrinking linearly to their final width."""

    what: str
    before: int
    target: int | None
    scope: str
    floors: dict[str, int]
    originals: dict[str, int]
    smallest: int | None = None
    fixed: dict[str, int] | None = None
    round_to: int = 1
    table: dict | None = None
    meter: Callable | None = None
    shares: dict[str, float] | None = None

    def step(self, model: nn.Module, inputs, s: int, steps: int, scorer: Importance) -> dict[str, Any]:
        if self.fixed is None:
            target = self.before - (self.before - self.target) * s / steps
            target = target if self.what == "latency" else int(target)
            out = prune_model(model, inputs, target=target, what=self.what, scorer=scorer, scope=self.scope,
                              floors=self.floors, originals=self.originals, smallest=self.smallest,
                              round_to=self.round_to, table=self.table, meter=self.meter, shares=self.shares)
            return {**out, "target": target}
        current = {c.root: len(c.units) for c in channel_groups(build_graph(model, inputs))}
        fixed = {r: _round_up(round(self.originals[r] - (self.originals[r] - k) * s / steps), self.round_to,
                              self.originals[r]) for r, k in self.fixed.items()}
        fixed = {r: k for r, k in fixed.items() if current.get(r, 0) > k}
        if not fixed:
            return {"removed": {}, "macs": count_macs(model, inputs), "params": count_params(model)}
        return prune_model(model, inputs, target=0, scorer=scorer, fixed=fixed, round_to=self.round_to)


def _schedule(model: nn.Module, inputs, what: str, ratio: float | None, layers: dict[str, float] | None,
              scope: str, round_to: int = 1, table: dict | None = None, meter: Callable | None = None,
              shares: dict[str, float] | None = None) -> _Schedule:
    chans = channel_groups(build_graph(model, inputs))
    originals = {ch.root: len(ch.units) for ch in chans}
    floors = {root: _floor(n, round_to=round_to) for root, n in originals.items()}
    if what == "layers":
        unknown = sorted(set(layers) - set(originals))
        if unknown:
            raise WorkbenchError(f"--layers names {unknown}, which are not prunable group roots; "
                                 f"expected some of: {', '.join(originals)}")
        fixed = {r: _round_up(max(1, round(originals[r] * f)), round_to, originals[r]) for r, f in layers.items()}
        return _Schedule(what, count_macs(model, inputs), None, scope, floors, originals, fixed=fixed,
                         round_to=round_to)
    before = meter.reference_ms if what == "latency" else _measure(model, inputs, what)
    target = before * ratio if what == "latency" else int(before * ratio)
    smallest = smallest_reachable(model, inputs, what=what, floors=floors, round_to=round_to, meter=meter)
    if smallest > target:
        name = {"macs": "MACs", "params": "parameters", "latency": "latency"}[what]
        raise WorkbenchError(
            f"--target-{what} {ratio} cannot be met: the smallest reachable is {smallest / before:.3f} of the original "
            f"{name} ({_amount(smallest, what)} of {_amount(before, what)}), with every prunable group cut to "
            f"{MIN_KEEP:.0%} of its channels "
            f"and the heads kept" + (f" (widths rounded up to multiples of {round_to}; --round-to 1 prunes further)"
                                     if round_to > 1 else ""))
    return _Schedule(what, before, target, scope, floors, originals, smallest=smallest, round_to=round_to, table=table,
                     meter=meter, shares=shares)


def prune(run: str | Path, out: str | Path, *, target_macs: float | None = 0.5, target_params: float | None = None,
          layers: dict[str, float] | None = None, importance: str = "taylor", scope: str = "local", steps: int = 3,
          round_to: int = ROUND_TO, target_latency: float | None = None, latency_batch: int = 1,
          finetune_epochs: int = 1, final_epochs: int | None = None, finetune_samples: int | None = None,
          lr: float | None = None,
          calib_samples: int = 512, seed: int | None = None, erank_measure: str = "entropy", force: bool = False, device: str = "auto", progress: bool = True,
          on_event: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """Prune run ``run`` to ``target_macs`` (or ``target_params``) times its MACs (params) in ``steps`` steps,
    fine-tuning ``finetune_epochs`` epochs after each (``final_epochs`` after the last, if given) through the
    training engine; write run folder ``out``.

    ``target_params``, ``target_latency`` or ``layers`` ({group root layer: kept fraction}, e.g. {"lstm": 0.5}:
    prune only those groups) replace the MACs target. ``target_latency`` is a ratio of the model's onnxruntime
    time at batch ``latency_batch`` on one thread, predicted from a per-group latency table measured once
    (:mod:`workbench.compress.latency_cost`; saved as ``latency_table.json``); the result is then timed for real
    beside the original and both figures are in the summary. With ``scope="global"`` the table also weights
    the ranking, so units whose removal saves time go first.
    ``scope``: local (every layer group loses the same fraction of its channels, the importance choosing
    which), global (one ranking of all channels, scores normalized per group) or erank (each group keeps
    c x r channels, r the effective rank of its root's output on the calibration samples, measured once
    before pruning; one c for all groups meets the target; the summary's ``erank`` holds
    {root: {"effective_rank", "width", "keep"}}). ``round_to``: every group of at least 2 x round_to units
    keeps a multiple of it (1: any width). ``importance``: a registered criterion (magnitude, taylor, lamp,
    rank) or fc:FILE.
    After each step the BatchNorm statistics are re-estimated on ``calib_samples`` training samples (which
    also give the Taylor gradients, the rank scores and the effective ranks). ``finetune_samples`` / ``lr`` override the run's recipe for fine-tuning
    (default: its n_train and 0.1x its lr; the last epoch of each fine-tune runs at the recipe's gamma
    times that). ``seed`` replaces the run's seed for the calibration draw and the fine-tuning (default: the
    run's). Returns the summary also written to ``out/metrics.json``.
    """
    from workbench.train.engine import evaluate, load_run_model

    other = target_params is not None or layers is not None or target_latency is not None
    what, ratio = _check_args(None if other else target_macs, target_params, layers, steps, finetune_epochs,
                              calib_samples, target_latency)
    if isinstance(latency_batch, bool) or not isinstance(latency_batch, int) or not 1 <= latency_batch <= 4096:
        raise WorkbenchError(f"--latency-batch must be an integer in [1, 4096], got {latency_batch!r}")
    if final_epochs is not None and final_epochs < 0:
        raise WorkbenchError(f"--final-epochs must be >= 0, got {final_epochs}")
    if scope not in SCOPES:
        raise WorkbenchError(f"unknown --scope {scope!r}; expected {', '.join(SCOPES)}")
    if erank_measure not in ERANK_MEASURES:
        raise WorkbenchError(f"unknown --erank-measure {erank_measure!r}; expected {', '.join(ERANK_MEASURES)}")
    if scope == "erank" and what == "layers":
        raise WorkbenchError("--scope erank sets every group's kept fraction from its effective rank; --layers "
                             "fixes them: give a --target-macs/--target-params/--target-latency instead")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or not 1 <= round_to <= 256:
        raise WorkbenchError(f"--round-to must be an integer in [1, 256], got {round_to!r}")
    out = ensure_new_dir(out, force=force)
    t0 = time.time()
    model, config, task = load_run_model(run)
    if seed is not None:  # the calibration draw and the fine-tuning (its samples, order and augmentation)
        config = {**config, "seed": int(seed)}
    model_config = config["model"]
    base_config = model_config["pruned"]["base"] if "pruned" in model_config else model_config
    scorer = get_importance(importance, model, model_config)
    sample = calibration_sample(task, config, max(2, calib_samples))  # BatchNorm re-estimation and Taylor gradients
    inputs = tuple(t[:1] for t in task.inputs(sample.batch(torch.arange(min(2, len(sample))))))
    before = {"macs": count_macs(model, inputs), "params": count_params(model)}
    graph = build_graph(model, inputs)
    erank = shares = None
    if scope == "erank":  # what analysis says each group needs, measured once on the unpruned model
        erank = effective_ranks(model, task, sample, [ch.root for ch in channel_groups(graph)], measure=erank_measure)
        shares = {r: e["effective_rank"] / e["width"] for r, e in erank.items()}
    table = meter = None
    if what == "latency":
        from workbench.compress.latency_cost import LatencyMeter, latency_table

        lat_inputs = tuple(t for t in task.inputs(sample.batch(torch.arange(min(latency_batch, len(sample))))))
        if scope == "global":  # the ranking prefers units whose removal saves time
            table = latency_table(model, lat_inputs, round_to=round_to, batch=latency_batch)
        meter = LatencyMeter(model, lat_inputs, batch=latency_batch)
        teacher_copy = copy.deepcopy(model)
    try:
        schedule = _schedule(model, inputs, what, ratio, layers, scope, round_to, table, meter, shares)
    except BaseException:
        if meter is not None:
            meter.close()
        raise
    val = calibration_sample(task, config, 0, val=True)
    teacher_metrics = evaluate(model, task, val)
    from workbench.train.data import check_sample_counts

    check_sample_counts(config["data"]["source"], {"n_train": finetune_samples}, {"n_train": "--finetune-samples"})
    recipe = Recipe.from_dict(config["recipe"])
    # Fine-tuning starts from trained weights: 0.1x the run's learning rate, and its last epoch at gamma x that.
    epochs = [finetune_epochs] * (steps - 1) + [finetune_epochs if final_epochs is None else final_epochs]
    # (A step with 0 epochs is not fine-tuned; its recipe is built at 1 epoch only to be a valid recipe.)
    recipes = [recipe.update(epochs=max(e, 1), lr=lr if lr is not None else recipe.lr * 0.1,
                             milestones=[e - 1] if e >= 2 else [], n_train=finetune_samples) for e in epochs]
    history: list[dict[str, Any]] = []
    last_fit: dict[str, Any] | None = None
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        with progress_bar("pruning", steps, enabled=progress) as advance:
            for s in range(1, steps + 1):
                if scorer.needs_grads:
                    accumulate_grads(model, task, sample)
                if scorer.needs_data:
                    scorer.prepare(model, task, sample)
                record: dict[str, Any] = {"step": s, **schedule.step(model, inputs, s, steps, scorer)}
                model.zero_grad(set_to_none=True)
                recalibrate_batchnorm(model, task, sample)
                record[f"{task.primary_metric}_pruned"] = evaluate(model, task, val)[task.primary_metric]
                model.config = pruned_config(model, base_config)
                if epochs[s - 1] > 0:
                    step_dir = tmp / "steps" / f"step{s}"
                    run_cfg = {**config, "model": model.config, "recipe": recipes[s - 1].to_dict(),
                               "pruned_from": str(run)}
                    last_fit = finetune(run_cfg, model, step_dir, device=device, progress=progress)
                    model, _, _ = load_run_model(step_dir)  # its best epoch, rebuilt from {"pruned": ...}
                    record[task.primary_metric] = last_fit["best"]
                history.append(record)
                if on_event:
                    on_event("step", record)
                advance(1, f"MACs {record['macs']:,}, params {record['params']:,}")
        cfg = pruned_config(model, base_config)
        if epochs[-1] > 0:  # the last step's fine-tuning run folder is the result
            shutil.copytree(tmp / "steps" / f"step{steps}" / "checkpoints", tmp / "checkpoints")
            shutil.copy2(tmp / "steps" / f"step{steps}" / "config.json", tmp / "config.json")
        else:
            save_checkpoint(tmp / "checkpoints" / "best.pt", model_state=model.state_dict(), model_config=cfg)
            write_json(tmp / "config.json", {**config, "model": cfg, "pruned_from": str(run)})
        metrics = evaluate(model, task, val)
        after = {"macs": count_macs(model, inputs), "params": count_params(model)}
        latency = None
        if meter is not None:
            from workbench.compress.latency_cost import RUNTIME, measure_pair

            meter.close()
            if table is not None:
                write_json(tmp / "latency_table.json", table)
            measured = measure_pair(teacher_copy, model, lat_inputs, batch=latency_batch, repeats=200)
            from workbench.profile.machine import machine

            latency = {"runtime": RUNTIME, "threads": meter.threads, "batch": latency_batch, "machine": machine(),
                       "table": "latency_table.json" if table is not None else None, "target_ms": schedule.target,
                       "models_timed": meter.calls, **measured, "macs_ratio": after["macs"] / before["macs"]}
            latency["cut_ratio"] = ((1 - measured["pruned_ms"] / measured["teacher_ms"]) / (1 - latency["macs_ratio"])
                                    if latency["macs_ratio"] < 1 else None)
        pm = task.primary_metric
        from workbench.train.data import resolve_data

        result = {
            "run": str(out), "source": str(run), "teacher": config.get("teacher"), "task": config["task"],
            # Fine-tuned on the run's training split; every metric here is on its validation split.
            "data": {**resolve_data("val", config).describe(), "n": len(val)},
            "importance": importance, "scope": scope, "round_to": round_to, "target": {"kind": what, "ratio": ratio, "layers": layers},
            "latency": latency,
            "steps": steps, "finetune": {"epochs": epochs, "lr": recipes[-1].lr,
                                        "n_train": last_fit["data"]["n_train"] if last_fit else None},
            "macs": {"before": before["macs"], "after": after["macs"], "ratio": after["macs"] / before["macs"]},
            "params": {"before": before["params"], "after": after["params"],
                       "ratio": after["params"] / before["params"]},
            "primary_metric": pm, "higher_is_better": task.higher_is_better,
            "teacher_metrics": teacher_metrics, "metrics": metrics, "teacher_metric": teacher_metrics[pm],
            "best": metrics[pm], "final": last_fit["final"] if epochs[-1] > 0 else metrics,
            "heads": graph.heads, "broadcast_edges_cut": [list(e) for e in graph.cut],
            "widths": _widths(cfg), "history": history, "seconds": round(time.time() - t0, 1),
            "erank": erank_record(erank, model) if erank is not None else None,
            "erank_measure": erank_measure if erank is not None else None,
        }
        write_json(tmp / "metrics.json", result)
    return result


def _widths(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pruned layers' new widths (from the config), for the summary."""
    keep = ("out_channels", "out_features", "hidden_size", "num_features")
    return {name: {a: v for a, v in attrs.items() if a in keep} for name, attrs in cfg["pruned"]["attrs"].items()
            if any(a in keep for a in attrs)}
