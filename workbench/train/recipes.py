"""Training recipes: a run's optimizer, schedule and data sizes.

Each teacher's recipes (per preset) are part of its registration (``register_teacher(..., recipes=)`` in
``teachers/*.py``): the `paper` recipes follow the write-ups; the `cpu` recipes keep the optimizer family
and schedule shape but size epochs and data to train on two CPU cores in minutes. A model registered
without recipes (a student, a user's model) trains with the generic :class:`Recipe`, and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import logging

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run (everything but the model and the data source)."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()  # MultiStepLR milestones (epochs); empty: constant lr
    gamma: float = 0.1
    val_interval: int = 1
    patience: int = 0  # early stopping: epochs without improvement by more than `delta`; 0: off
    delta: float = 0.0
    clip_grad: float = 0.0  # max gradient norm; 0: off
    n_train: int = 20000
    n_val: int = 2000
    train_subjects: int = 40  # SynthGaze renders any number; 12 left a ~1 deg gap to unseen subjects
    val_subjects: int = 10
    size: Any = None  # SynthGaze image size for this preset (int or (W, H))
    task_options: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        if isinstance(self.size, tuple):
            d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise WorkbenchError(f"unknown training option(s) {unknown}; expected some of {sorted(known)}")
        d = dict(d)
        if "milestones" in d:
            d["milestones"] = tuple(d["milestones"])
        if isinstance(d.get("size"), list):
            d["size"] = tuple(d["size"])
        return cls(**d)

    def update(self, **changes: Any) -> "Recipe":
        changes = {k: v for k, v in changes.items() if v is not None}
        return Recipe.from_dict({**self.to_dict(), **changes})


def registered_recipes(name: str) -> dict[str, Recipe]:
    """The recipes a model's registration gives ({preset: Recipe}); {} for a model registered without
    any (a student, a user's teacher) or not registered at all."""
    import teachers

    if name in teachers.list_teachers():
        return dict(teachers.teacher_spec(name).recipes)
    return {}


def get_recipe(model: str, preset: str) -> Recipe:
    """The training recipe of a registered model at a preset, from its registration.

    A model whose registration names no recipe trains with the generic ``Recipe()``; that fallback is
    logged as a warning (and :func:`recipe_source` says which it was), never silent. A registered recipe table
    without ``preset`` is an error naming the presets it has.
    """
    by_preset = registered_recipes(model)
    if not by_preset:
        log.warning("no training recipe registered for %r: using the generic recipe (%s)", model,
                    ", ".join(f"{k}={v}" for k, v in GENERIC_SUMMARY.items()))
        return Recipe()
    if preset not in by_preset:
        raise WorkbenchError(f"no training recipe for {model!r} at preset {preset!r}; expected one of {sorted(by_preset)}")
    return by_preset[preset]


def recipe_source(model: str, preset: str) -> str:
    """Where :func:`get_recipe`'s recipe comes from: "registered (<model>, <preset>)" or "generic"."""
    return f"registered ({model}, {preset})" if registered_recipes(model) else "generic (no recipe registered)"


__all__ = ["Recipe", "get_recipe", "recipe_source", "registered_recipes"]

GENERIC_SUMMARY = {k: getattr(Recipe(), k) for k in ("epochs", "batch_size", "optimizer", "lr")}
