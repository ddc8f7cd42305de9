"""Params, MACs and FLOPs you can trust: calflops, cross-checked against torch's counter on every call.

Two counters run on the same forward pass inputs:

* **calflops** (``calculate_flops``'s pipeline, used directly so every module's own count is kept): MACs
  of linear/conv/matmul calls, and FLOPs that add the elementwise work (BatchNorm, activations,
  pooling, bias and residual adds).
* **torch.utils.flop_counter** (aten level): FLOPs of matrix products and convolutions only, exactly
  2 per MAC, whatever Python API issued them (``einsum``, ``@``, ``bmm`` included).

Where they agree the workbench reports that figure. Where they differ, the difference is located per
module (its *own* ops, children excluded) and the larger count is kept: neither counter is known to
over-count a product, and each misses ops the other sees (calflops counts ``einsum`` and ``bmm`` as 0
MACs, e.g. the deformable convolution of ``evg --backbone resdcn18``). Both report 0 MACs for LSTM/GRU
layers; those get the closed form ``gates * (in*h + h*h)`` per step and direction
(:func:`workbench.profile.quick.recurrent_macs`), and 2 FLOPs per MAC (gate nonlinearities and the
cell update, ~9h per step and direction for an LSTM, are not counted).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from workbench.errors import WorkbenchError
from workbench.profile.inputs import call_args, describe_shapes, first_error_line
from workbench.profile.quick import rnn_call_macs
from workbench.utils.hooks import forward_hooks

__all__ = ["count_total", "profile_model"]


def _own(totals: Mapping[str, int], tree: Mapping[str, list[str]]) -> dict[str, int]:
    """Own count of each module from torch's inclusive totals of the modules that were *called*.

    A module reached through a method (``backbone.forward_features(x)``) or a container indexed by
    name (``heads["hm"](x)``) is never called itself, so it has no total; its ops belong to the
    nearest called ancestor, as calflops attributes them too. Own = total minus the totals of the
    nearest called descendants.
    """

    def nearest(name: str) -> Iterator[str]:
        for c in tree[name]:
            if c in totals:
                yield c
            else:
                yield from nearest(c)

    return {name: (totals[name] - sum(totals[d] for d in nearest(name))) if name in totals else 0 for name in tree}


def _tree(model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, list[str]]]:
    mods = dict(model.named_modules())
    ids = {id(m): n for n, m in mods.items()}
    tree = {n: [ids[id(c)] for c in m.children() if id(c) in ids] for n, m in mods.items()}
    return mods, tree


def _torch_pass(model: nn.Module, args: tuple, mods: Mapping[str, nn.Module]) -> tuple[dict[str, int], dict[str, int], dict[str, int], int]:
    """(subtree MACs per module name, per-op MACs, closed-form MACs per recurrent module, total) from one pass."""
    rnn: dict[str, int] = {}

    def hook(name: str, mod: nn.RNNBase, a, _out) -> None:
        rnn[name] = rnn.get(name, 0) + rnn_call_macs(mod, a)

    recurrent = [(n, m) for n, m in mods.items() if isinstance(m, nn.RNNBase)]
    with forward_hooks(recurrent, hook), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    totals = {}  # inclusive totals of the modules torch saw called
    for name in mods:
        key = root if name == "" else f"{root}.{name}"
        if key in counts:
            totals[name] = int(sum(counts[key].values())) // 2
    ops = {str(op): int(v) // 2 for op, v in counts.get("Global", {}).items()}
    return totals, ops, rnn, int(counter.get_total_flops()) // 2


@contextlib.contextmanager
def _calflops(model: nn.Module) -> Iterator[None]:
    """calflops' counting pipeline (what ``calculate_flops`` runs), left attached until the block ends."""
    with contextlib.redirect_stdout(io.StringIO()):
        from calflops.calculate_pipline import (
            CalFlopsPipline,  # imports transformers: keep it lazy
        )
    pipe = CalFlopsPipline(model=model, include_backPropagation=False, compute_bp_factor=2.0)
    pipe.start_flops_calculate(ignore_list=None)
    try:
        yield
    finally:
        pipe.end_flops_calculate()  # restores torch.nn.functional and removes the hooks


def _calflops_pass(model: nn.Module, args: tuple, mods: Mapping[str, nn.Module]) -> tuple[dict[str, int], dict[str, int]]:
    """(own MACs, own FLOPs) per module name, as calflops attributes them."""
    with _calflops(model):
        with torch.no_grad():
            model(*args)
        macs = {n: int(getattr(m, "__macs__", 0)) for n, m in mods.items()}
        flops = {n: int(getattr(m, "__flops__", 0)) for n, m in mods.items()}
    return macs, flops


def _count(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Both counters on one model and input set, reconciled per module (see the module docstring)."""
    names, args = call_args(model, inputs)
    mods, tree = _tree(model)
    was_training = model.training
    model.eval()
    try:
        try:
            torch_tot, ops, rnn, total = _torch_pass(model, args, mods)
        except Exception as exc:  # noqa: BLE001 - a user's model may raise anything on inputs it does not take
            raise WorkbenchError(f"model rejected inputs {describe_shapes(inputs)}: {first_error_line(exc)}") from None
        cal_macs, cal_flops = _calflops_pass(model, args, mods)
    finally:
        model.train(was_training)
    torch_own = _own(torch_tot, tree)
    # A module the tracker named differently would hide its ops: check the bookkeeping.
    if sum(torch_own.values()) != total:
        raise RuntimeError(f"torch's counter: module counts ({sum(torch_own.values())}) do not add up to its total ({total})")
    own_macs, own_flops, gaps = {}, {}, []
    elementwise: dict[str, int] = {}
    rnn_flops_calflops = 0
    for name, mod in mods.items():
        c_m, c_f, t_m = cal_macs[name], cal_flops[name], torch_own[name]
        if isinstance(mod, nn.RNNBase):
            rnn_flops_calflops += c_f
            m = rnn.get(name, 0)
            own_macs[name], own_flops[name] = m, 2 * m
            continue
        m = max(c_m, t_m)
        own_macs[name] = m
        own_flops[name] = c_f
        if c_m != t_m:
            gaps.append({"module": name or "(root)", "type": type(mod).__name__, "macs_calflops": c_m, "macs_torch": t_m})
            # calflops may have counted the missed product as FLOPs without MACs (einsum does): never
            # count it twice, at the price of a few elementwise FLOPs in this module.
            own_flops[name] = max(c_f, 2 * m)
        extra = own_flops[name] - 2 * m
        if extra:
            kind = type(mod).__name__ if not tree[name] else "ops in forward (adds, muls, cat...)"
            elementwise[kind] = elementwise.get(kind, 0) + extra
    return {
        "names": names, "mods": mods, "tree": tree, "own_macs": own_macs, "own_flops": own_flops,
        "cal_own": cal_macs, "torch_own": torch_own, "rnn": rnn, "ops": ops, "gaps": gaps,
        "elementwise": dict(sorted(elementwise.items(), key=lambda kv: -kv[1])),
        "macs": sum(own_macs.values()), "flops": sum(own_flops.values()),
        "macs_calflops": sum(cal_macs.values()), "flops_calflops": sum(cal_flops.values()),
        "macs_torch": total, "macs_rnn": sum(rnn.values()),
        "rnn_flops_calflops": rnn_flops_calflops,
    }


def count_total(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> int:
    """The workbench's MACs of one forward pass (the ``macs`` of :func:`profile_model`, without the table)."""
    return int(_count(model, inputs)["macs"])


def _subtree(values: Mapping[str, int], tree: Mapping[str, list[str]]) -> dict[str, int]:
    out: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in out:
            out[n] = values.get(n, 0) + sum(visit(c) for c in tree[n])
        return out[n]

    for n in tree:
        visit(n)
    return out


def _rows(c: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    """Rows that partition the model at ``depth``: modules at that depth, shallower leaves, and the own
    ops of shallower modules (calls in their forward outside any child), so the rows sum to the total."""
    mods, tree = c["mods"], c["tree"]
    sub = {k: _subtree(c[k], tree) for k in ("own_macs", "own_flops", "cal_own", "torch_own", "rnn")}
    rows: list[dict[str, Any]] = []

    def row(name: str, own: bool) -> dict[str, Any]:
        mod = mods[name]
        src = {k: ({name: c[k].get(name, 0)} if own else sub[k]) for k in sub}
        params = sum(p.numel() for p in mod.parameters(recurse=not own))
        label = (name or "(model)") + (" (own ops)" if own else "")
        return {"name": label, "type": type(mod).__name__, "params": int(params),
                "macs": src["own_macs"].get(name, 0), "flops": src["own_flops"].get(name, 0),
                "macs_calflops": src["cal_own"].get(name, 0), "macs_torch": src["torch_own"].get(name, 0),
                "macs_rnn": src["rnn"].get(name, 0)}

    def visit(name: str, d: int) -> None:
        if d >= depth or not tree[name]:
            rows.append(row(name, own=False))
            return
        r = row(name, own=True)
        if r["macs"] or r["flops"] or r["params"]:
            rows.append(r)
        for child in tree[name]:
            visit(child, d + 1)

    visit("", 0)
    return rows


def _fmt(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _notes(c: dict[str, Any]) -> list[str]:
    notes = []
    mc, mt = c["macs_calflops"], c["macs_torch"]
    rel = (mc - mt) / mt if mt else 0.0
    if not c["gaps"]:
        notes.append(f"calflops and torch's counter agree on MACs ({_fmt(mc)} each).")
    else:
        where = ", ".join(f"{g['module']} ({g['type']}: calflops {_fmt(g['macs_calflops'])}, torch {_fmt(g['macs_torch'])})"
                          for g in c["gaps"][:4])
        more = f" and {len(c['gaps']) - 4} more" if len(c["gaps"]) > 4 else ""
        notes.append(f"MACs: calflops {_fmt(mc)} vs torch {_fmt(mt)} ({rel:+.2%}); they differ in {where}{more}. "
                     "The workbench keeps the larger count per module (each counter misses ops the other sees, "
                     "e.g. calflops counts einsum/bmm as 0 MACs).")
    ew = sum(c["elementwise"].values())
    if ew:
        parts = ", ".join(f"{k} {_fmt(v)}" for k, v in list(c["elementwise"].items())[:5])
        notes.append(f"FLOPs: calflops {_fmt(c['flops_calflops'])} vs torch {_fmt(2 * mt)}. torch's counter counts "
                     f"only products (2 FLOPs per MAC); the workbench adds the {_fmt(ew)} FLOPs of elementwise ops "
                     f"that calflops counts ({parts}).")
    if c["rnn"]:
        kinds = sorted({type(c["mods"][n]).__name__ for n in c["rnn"]})
        notes.append(f"Both counters report 0 MACs for {len(c['rnn'])} recurrent layer(s) ({', '.join(kinds)}); "
                     f"added the closed form gates*(in*h + h*h) per step and direction: {_fmt(c['macs_rnn'])} MACs. "
                     f"Their FLOPs are taken as 2 x MACs (gate nonlinearities not counted); calflops puts "
                     f"{_fmt(c['rnn_flops_calflops'])} FLOPs on them with its own estimate, 0 MACs.")
    return notes


def profile_model(model: nn.Module, inputs: Mapping[str, torch.Tensor], *, depth: int = 2,
                  top: int | None = None) -> dict[str, Any]:
    """Params, MACs and FLOPs of one forward pass on ``inputs`` ({name: (B, ...) tensor}), with a
    per-layer breakdown.

    Returns a JSON-ready dict: ``params``, ``macs``, ``flops`` (the workbench figures), ``macs_calflops``,
    ``flops_calflops``, ``macs_torch``, ``flops_torch`` (each counter's own total), ``macs_rnn`` (closed
    form for recurrent layers), ``counter_diff``, ``ops`` (torch's per-aten-op MACs), ``input_shapes``,
    ``layers`` (rows partitioning the model at ``depth``: {name, type, params, macs, flops,
    macs_calflops, macs_torch, macs_rnn, share}, largest first; the ``top`` largest if given),
    ``layers_omitted`` and ``notes`` (what the counters disagree on, and why).
    """
    if depth < 0:
        raise WorkbenchError(f"expected --depth >= 0, got {depth}")
    if top is not None and top < 1:
        raise WorkbenchError(f"expected --top >= 1, got {top}")
    c = _count(model, inputs)
    total = c["macs"]
    rows = sorted(_rows(c, depth), key=lambda r: (-r["macs"], -r["params"]))
    for r in rows:
        r["share"] = r["macs"] / total if total else 0.0
    kept, dropped = (rows[:top], rows[top:]) if top else (rows, [])
    mt = c["macs_torch"]
    params = sum(p.numel() for p in model.parameters())
    return {
        "params": int(params),
        "params_trainable": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "macs": int(total), "flops": int(c["flops"]),
        "macs_calflops": int(c["macs_calflops"]), "flops_calflops": int(c["flops_calflops"]),
        "macs_torch": int(mt), "flops_torch": int(2 * mt), "macs_rnn": int(c["macs_rnn"]),
        "counter_diff": {
            "macs_calflops_vs_torch": (c["macs_calflops"] - mt) / mt if mt else 0.0,
            "flops_elementwise": int(sum(c["elementwise"].values())),
            "elementwise_by_type": c["elementwise"],
            "modules": c["gaps"],
        },
        "ops": c["ops"],
        "input_names": c["names"],
        "input_shapes": {k: list(v.shape) for k, v in inputs.items()},
        "batch": int(next(iter(inputs.values())).shape[0]) if inputs else 0,
        "depth": depth,
        "layers": kept,
        "layers_omitted": {"count": len(dropped), "macs": int(sum(r["macs"] for r in dropped)),
                           "params": int(sum(r["params"] for r in dropped))},
        "notes": _notes(c),
    }
