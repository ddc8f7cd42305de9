"""A model's own facts (GradCam layers, the default FitNets hint layer), from its registration, or
found from the module graph for a model whose registration gives none (a user's model).

Generic code (analysis, distillation) asks here instead of keeping tables keyed by model name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.utils.hooks import forward_hooks

__all__ = ["base_config", "default_hint_layer", "registered_gradcam_layers", "registered_hint_layer"]


def base_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A model config, or, for a pruned model, the config of the model it was pruned from (its layer
    names are the same)."""
    while isinstance(config.get("pruned"), Mapping) and "base" in config["pruned"]:
        config = config["pruned"]["base"]
    return config


def _spec(config: Mapping[str, Any]) -> Any:
    config = base_config(config)
    try:
        if "teacher" in config:
            from teachers import list_teachers, teacher_spec

            return teacher_spec(config["teacher"]) if config["teacher"] in list_teachers() else None
        if "student" in config:
            from students import list_students, student_spec

            return student_spec(config["student"]) if config["student"] in list_students() else None
    except ValueError:
        return None
    return None


def registered_gradcam_layers(config: Mapping[str, Any]) -> dict[str, str]:
    """{image input: conv layer} the model's registration names for GradCam; {} when it names none."""
    spec = _spec(config or {})
    return dict(getattr(spec, "gradcam_layers", None) or {})


def registered_hint_layer(config: Mapping[str, Any]) -> str | None:
    """The layer whose output the model's registration names as its FitNets hint; None when none."""
    spec = _spec(config or {})
    return getattr(spec, "hint_layer", None)


def default_hint_layer(model: nn.Module, inputs: Sequence[torch.Tensor]) -> str:
    """The penultimate layer of ``model`` on ``inputs``: of the modules that own parameters, in the order
    the forward pass runs them, the one before the last (the last is the head). Its output is the
    features the head reads, the usual FitNets hint."""
    order: list[str] = []
    owners = [(n, m) for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    with forward_hooks(owners, lambda name, _m, _a, _o: order.append(name)), torch.no_grad():
        model.eval()(*inputs)
    ran = list(dict.fromkeys(order))  # first run of each module
    if not ran:
        raise WorkbenchError("the model has no layer with parameters to take a hint from")
    return ran[-2] if len(ran) >= 2 else ran[-1]
