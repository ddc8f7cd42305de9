"""Build any model of the workbench from its JSON config (teachers, students, pruned models and a user's
``module:factory`` models), so checkpoints never need pickled modules."""

from __future__ import annotations

from typing import Any

from torch import nn

from workbench.errors import WorkbenchError


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model (architecture only, fresh weights) from the config stored beside its weights."""
    if not isinstance(config, dict):
        raise WorkbenchError(f"model config must be a dict, got {type(config).__name__}")
    if "teacher" in config:
        from teachers import build_from_config

        try:
            return build_from_config(config)
        except ValueError as exc:
            raise WorkbenchError(f"cannot rebuild teacher from config: {exc}") from None
    if "student" in config:
        from students import build_from_config as build_student

        try:
            return build_student(config)
        except ValueError as exc:
            raise WorkbenchError(f"cannot rebuild student from config: {exc}") from None
    if "pruned" in config:
        from workbench.compress.pruned import build_pruned

        return build_pruned(config)
    if "factory" in config:
        from workbench.modelspec import build_factory

        return build_factory(config)
    raise WorkbenchError(f"cannot tell what model this config describes (keys: {sorted(config)})")


def model_task(config: dict[str, Any]) -> str:
    """The task name of a model config."""
    if "task" in config:
        return config["task"]
    if "teacher" in config:
        from teachers import teacher_spec

        return teacher_spec(config["teacher"]).task
    if "pruned" in config:
        return model_task(config["pruned"]["base"])
    raise WorkbenchError(f"model config names no task (keys: {sorted(config)})")


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
