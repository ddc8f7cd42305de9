"""Initialization from another run: load every tensor whose name and shape match.

``workbench train MODEL --init-from RUN [--init-map SRC=DST ...]`` starts the new model from RUN's best
checkpoint (RUN: a run folder, whose ``best.pt`` is used, else its ``last.pt``; or a checkpoint / state
dict ``.pt`` file). A tensor of the new model's state dict is loaded when the source has a tensor of the
same name (after the map) and the same shape; everything else keeps its fresh initialization.

The map renames source keys by prefix, e.g. gazenet's MobileNetV2 trunk into EVG's ``mobv2`` encoder::

    --init-map features.=backbone.features.

With a map, only source tensors under one of its SRC prefixes are taken (the longest matching prefix
wins); the others count as extra in the source. So ``--init-map backbone.=backbone.`` loads just the
encoder of a run of the same architecture. Without a map every name is taken as it is.

The result is a record (config.json and metrics.json keep it)::

    {"run": ..., "checkpoint": ..., "map": {src: dst} | None, "loaded": n, "total": tensors of the model,
     "skipped": {"missing_in_source": n, "shape_mismatch": n, "extra_in_source": n},
     "shape_mismatches": ["name: source (a, b), model (c, d)", ...]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError

__all__ = ["InitMatch", "apply_init", "describe", "init_model", "match_state", "parse_init_map", "read_init_source"]

_SHOWN_MISMATCHES = 20  # the record lists this many shape mismatches by name (the count is always whole)


def parse_init_map(items: Iterable[str] | Mapping[str, str] | None, *, option: str = "--init-map") -> dict[str, str]:
    """``["SRC=DST", ...]`` (or a ``{SRC: DST}`` table) -> ``{SRC: DST}``; bad syntax is one WorkbenchError line.

    Either prefix may be empty (``=backbone.`` prefixes every key, ``backbone.=`` strips one), not both.
    """
    if items is None:
        return {}
    pairs: list[tuple[Any, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        if isinstance(items, str):
            items = [items]
        pairs = []
        for item in items:
            if not isinstance(item, str) or item.count("=") != 1:
                raise WorkbenchError(f"{option} {item!r}: expected SRC_PREFIX=DST_PREFIX (one '='), e.g. "
                                     "features.=backbone.features.")
            src, dst = item.split("=")
            pairs.append((src, dst))
    out: dict[str, str] = {}
    for src, dst in pairs:
        if not isinstance(src, str) or not isinstance(dst, str):
            raise WorkbenchError(f"{option}: prefixes must be strings, got {src!r} = {dst!r}")
        src, dst = src.strip(), dst.strip()
        if not src and not dst:
            raise WorkbenchError(f"{option} '=': give a source prefix, a model prefix, or both")
        if src in out:
            raise WorkbenchError(f"{option}: source prefix {src!r} is mapped twice ({out[src]!r} and {dst!r})")
        out[src] = dst
    return out


def read_init_source(source: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """RUN (a run folder or a ``.pt`` file) -> (its state dict, ``{"run": ..., "checkpoint": ...}``).

    A run folder gives its best checkpoint (its last one when no validation has saved a best yet);
    everything is read with ``weights_only=True``.
    """
    from workbench.modelspec import read_state_dict
    from workbench.train.run_folder import RunFolder, load_checkpoint

    path = Path(source).expanduser()
    if not path.exists():
        raise WorkbenchError(f"{source}: --init-from not found (expected a run folder or a checkpoint .pt file)")
    if path.is_dir():
        run = RunFolder.open(path)
        ck_path = run.best if run.best.is_file() else run.last
        if not ck_path.is_file():
            raise WorkbenchError(f"{path}: run folder has no checkpoint yet (checkpoints/best.pt or last.pt)")
        state = load_checkpoint(ck_path)["model"]
    else:
        ck_path = path
        state = read_state_dict(path)
    return state, {"run": str(path.resolve()), "checkpoint": str(ck_path.resolve())}


@dataclass
class InitMatch:
    """Which source tensors go where: ``loaded`` maps model names to source tensors; the rest are skipped."""

    loaded: dict[str, torch.Tensor] = field(default_factory=dict)
    missing_in_source: list[str] = field(default_factory=list)  # model tensors the source lacks
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # (name, src, model)
    extra_in_source: list[str] = field(default_factory=list)  # source tensors with no model tensor (or outside the map)

    def record(self, total: int) -> dict[str, Any]:
        shown = [f"{k}: source {tuple(s)}, model {tuple(m)}" for k, s, m in self.shape_mismatch[:_SHOWN_MISMATCHES]]
        return {"loaded": len(self.loaded), "total": total,
                "skipped": {"missing_in_source": len(self.missing_in_source),
                            "shape_mismatch": len(self.shape_mismatch),
                            "extra_in_source": len(self.extra_in_source)},
                "shape_mismatches": shown}


def _rename(key: str, mapping: Mapping[str, str]) -> str | None:
    """``key`` under the longest matching SRC prefix, renamed to DST; None when a map is given and no
    prefix matches; ``key`` itself without a map."""
    if not mapping:
        return key
    hits = [src for src in mapping if key.startswith(src)]
    if not hits:
        return None
    src = max(hits, key=len)
    return mapping[src] + key[len(src):]


def match_state(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                mapping: Mapping[str, str] | None = None) -> InitMatch:
    """Match ``source`` tensors to ``target`` (a model's state dict) by name (after ``mapping``) and shape.

    A map prefix that matches no key of its side is a WorkbenchError (a typo would load nothing silently).
    """
    mapping = dict(mapping or {})
    for src, dst in mapping.items():
        if not any(k.startswith(src) for k in source):
            raise WorkbenchError(f"--init-map {src}={dst}: no tensor of the source starts with {src!r} "
                                 f"(its first: {next(iter(source), 'none')!r})")
        if not any(k.startswith(dst) for k in target):
            raise WorkbenchError(f"--init-map {src}={dst}: no tensor of the model starts with {dst!r} "
                                 f"(its first: {next(iter(target), 'none')!r})")
    renamed: dict[str, str] = {}  # model name -> source name
    m = InitMatch()
    for key in source:
        new = _rename(key, mapping)
        if new is None or new not in target:
            m.extra_in_source.append(key)
            continue
        if new in renamed:
            raise WorkbenchError(f"--init-map: source tensors {renamed[new]!r} and {key!r} both map to {new!r}")
        renamed[new] = key
    for name, want in target.items():
        key = renamed.get(name)
        if key is None:
            m.missing_in_source.append(name)
        elif tuple(source[key].shape) != tuple(want.shape):
            m.shape_mismatch.append((name, tuple(source[key].shape), tuple(want.shape)))
        else:
            m.loaded[name] = source[key]
    return m


def apply_init(model: nn.Module, source: Mapping[str, torch.Tensor], mapping: Mapping[str, str] | None = None,
               *, label: str = "--init-from") -> dict[str, Any]:
    """Load the matching tensors of ``source`` into ``model`` (in place); returns the match record.

    No match at all is a WorkbenchError: training would silently start from scratch.
    """
    target = model.state_dict()
    m = match_state(source, target, mapping)
    if not m.loaded:
        hint = (f"e.g. {m.shape_mismatch[0][0]}: source {m.shape_mismatch[0][1]}, model {m.shape_mismatch[0][2]}"
                if m.shape_mismatch else
                f"source keys like {next(iter(source), 'none')!r}, model keys like {next(iter(target), 'none')!r}; "
                "map prefixes with --init-map SRC=DST")
        raise WorkbenchError(f"{label}: no tensor matches the model by name and shape ({len(source)} source, "
                             f"{len(target)} model tensors; {hint})")
    result = model.load_state_dict(m.loaded, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # every loaded name came from the model itself
    return {"map": dict(mapping) if mapping else None, **m.record(len(target))}


def init_model(model: nn.Module, source: str | Path, mapping: Mapping[str, str] | None = None,
               *, state: Mapping[str, torch.Tensor] | None = None, where: dict[str, str] | None = None) -> dict[str, Any]:
    """Initialize ``model`` from RUN (see :func:`read_init_source`); returns the record config.json keeps:
    ``{"run", "checkpoint", "map", "loaded", "total", "skipped", "shape_mismatches"}``. ``state`` and
    ``where`` (what :func:`read_init_source` returned) skip reading the file again."""
    if state is None or where is None:
        state, where = read_init_source(source)
    return {**where, **apply_init(model, state, mapping, label=f"{source}")}


def describe(record: Mapping[str, Any]) -> str:
    """One line for the console: where from, how many loaded, how many skipped and why."""
    s = record["skipped"]
    mapped = "" if not record.get("map") else " with map " + ", ".join(f"{a}={b}" for a, b in record["map"].items())
    return (f"initialized from {record['run']}{mapped}: loaded {record['loaded']} of {record['total']} tensors; "
            f"skipped {s['missing_in_source']} missing in source, {s['shape_mismatch']} shape mismatch, "
            f"{s['extra_in_source']} extra in source")
