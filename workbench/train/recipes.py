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
import math

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
    # The learning-rate schedule. "step": lr times gamma at each of `milestones` (epochs; none: constant lr).
    # "onecycle": warm up from lr/25 to lr over the first `warmup` fraction of the steps, then anneal (cosine)
    # to lr/25e4 at the last step (Smith & Topor's one-cycle policy), stepped every batch; milestones unused.
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup: float = 0.3
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

    def __post_init__(self) -> None:
        """Every value a user can type (--epochs, --set key=value, a recipe file) is checked here, once:
        a wrong one is one line naming the option, before any data is read or any folder is made."""
        for name, lowest in _AT_LEAST.items():
            value = getattr(self, name)
            integer = isinstance(_DEFAULTS[name], int)
            ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type:
                raise WorkbenchError(f"training option {name}={value!r}: expected {'an integer' if integer else 'a number'}")
            if not math.isfinite(value) or value < lowest or (name in _POSITIVE and value <= 0):
                bound = "> 0" if name in _POSITIVE else f">= {lowest}"
                raise WorkbenchError(f"training option {name}={value!r}: must be {bound}")
        if self.schedule not in SCHEDULES:
            raise WorkbenchError(f"training option schedule={self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, (int, float)) or not 0 < self.warmup < 1:
            raise WorkbenchError(f"training option warmup={self.warmup!r}: expected a fraction of the steps, "
                                 "between 0 and 1")
        if self.optimizer not in OPTIMIZERS:
            raise WorkbenchError(f"training option optimizer={self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if not isinstance(self.nesterov, bool):
            raise WorkbenchError(f"training option nesterov={self.nesterov!r}: expected true or false")
        if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in self.milestones):
            raise WorkbenchError(f"training option milestones={list(self.milestones)!r}: expected epoch numbers >= 1")
        sizes = self.size if isinstance(self.size, tuple) else (self.size,)
        if self.size is not None and (len(sizes) not in (1, 2) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in sizes)):
            raise WorkbenchError(f"training option size={self.size!r}: expected a side in pixels (>= 8) or [width, height]")
        if not isinstance(self.task_options, dict):
            raise WorkbenchError(f"training option task_options={self.task_options!r}: expected a table of options")

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
            d["milestones"] = tuple(d["milestones"]) if isinstance(d["milestones"], (list, tuple)) else (d["milestones"],)
        if isinstance(d.get("size"), list):
            d["size"] = tuple(d["size"])
        return cls(**d)

    def update(self, **changes: Any) -> "Recipe":
        changes = {k: v for k, v in changes.items() if v is not None}
        return Recipe.from_dict({**self.to_dict(), **changes})


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "onecycle")
# Lower bounds of the numeric options (those in _POSITIVE must be strictly above 0).
_AT_LEAST = {"epochs": 1, "batch_size": 1, "lr": 0, "momentum": 0, "weight_decay": 0, "gamma": 0, "val_interval": 1,
             "patience": 0, "delta": 0, "clip_grad": 0, "n_train": 1, "n_val": 1, "train_subjects": 1,
             "val_subjects": 1}
_POSITIVE = {"gamma"}
_DEFAULTS = {f.name: f.default for f in fields(Recipe)}


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
