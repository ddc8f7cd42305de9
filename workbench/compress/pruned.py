"""Pruned models as JSON: the base model's config plus the widths pruning changed, never a pickled module.

    {"pruned": {"base": <the unpruned model's config>,
                "shapes": {state_dict key: shape, ...},          # only entries that differ from the base
                "attrs": {module name: {attribute: value}, ...}}} # in/out channels, groups, hidden_size, ...

:func:`build_pruned` builds the base model, sets the recorded attributes (Conv in/out_channels and groups,
BatchNorm num_features, Linear in/out_features, LSTM input/hidden size, ...) and replaces every recorded
parameter and buffer by an empty tensor of its recorded shape, so ``load_state_dict`` fits exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.utils.jsonio import json_native

__all__ = ["build_pruned", "pruned_config"]

_ATTRS = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features", "input_size",
          "hidden_size", "embedding_dim", "num_channels", "normalized_shape", "num_parameters")


def pruned_config(model: nn.Module, base_config: dict[str, Any]) -> dict[str, Any]:
    """The JSON config that :func:`build_pruned` turns back into ``model``'s architecture."""
    from workbench.train.models import build_model

    base = build_model(base_config)
    base_state = base.state_dict()
    state = model.state_dict()
    if set(state) != set(base_state):
        extra, missing = sorted(set(state) - set(base_state)), sorted(set(base_state) - set(state))
        raise WorkbenchError(f"pruned model no longer matches its base's layers "
                             f"(new {extra[:3]}, missing {missing[:3]})")
    shapes = {k: list(v.shape) for k, v in state.items() if tuple(v.shape) != tuple(base_state[k].shape)}
    base_modules = dict(base.named_modules())
    attrs: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        ref = base_modules.get(name)
        if ref is None:
            raise WorkbenchError(f"pruned model has a module {name!r} its base lacks")
        diff = {a: json_native(getattr(module, a)) for a in _ATTRS
                if hasattr(module, a) and hasattr(ref, a) and getattr(module, a) != getattr(ref, a)}
        if diff:
            attrs[name] = diff
    return {"pruned": {"base": copy.deepcopy(base_config), "shapes": shapes, "attrs": attrs}}


def build_pruned(config: dict[str, Any]) -> nn.Module:
    """Rebuild a pruned model (architecture, uninitialized weights) from :func:`pruned_config`'s output."""
    from workbench.train.models import build_model

    spec = config.get("pruned") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or not {"base", "shapes", "attrs"} <= set(spec):
        raise WorkbenchError("a pruned model config needs 'pruned': {'base', 'shapes', 'attrs'}")
    model = build_model(spec["base"])
    try:
        for name, attrs in spec["attrs"].items():
            module = model.get_submodule(name)
            for attr, value in attrs.items():
                if attr not in _ATTRS or not hasattr(module, attr):
                    raise WorkbenchError(f"pruned config sets unknown attribute {name}.{attr}")
                setattr(module, attr, tuple(value) if isinstance(value, list) else value)
        for key, shape in spec["shapes"].items():
            module_name, _, attr = key.rpartition(".")
            module = model.get_submodule(module_name)
            old = getattr(module, attr, None)
            if not isinstance(old, torch.Tensor):
                raise WorkbenchError(f"pruned config resizes {key!r}, which is not a parameter or buffer")
            new = torch.empty([int(s) for s in shape], dtype=old.dtype)
            # RNNBase.__setattr__ keeps an LSTM's flat weight list in step with its parameters.
            if isinstance(old, nn.Parameter):
                new = nn.Parameter(new, requires_grad=old.requires_grad)
            setattr(module, attr, new)
    except AttributeError as exc:
        raise WorkbenchError(f"pruned config does not fit its base model: {exc}") from None
    model.config = copy.deepcopy(config)
    return model
