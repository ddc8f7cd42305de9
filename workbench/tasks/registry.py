"""Task registry: `get_task(name)` returns the contract shared by every model of that task."""

from __future__ import annotations

from typing import Any

from workbench.tasks.base import Task
from workbench.utils.registry import ClassRegistry

_TASKS = ClassRegistry("task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator; a duplicate name is an error."""
    return _TASKS.register(cls)


def get_task(name: str, **options: Any) -> Task:
    """The task contract ``name``; unknown names raise ValueError listing the valid ones."""
    _load_all()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(sorted(_TASKS))}")
    return _TASKS[name](**options)


def list_tasks() -> list[str]:
    _load_all()
    return sorted(_TASKS)


def _load_all() -> None:
    # Importing the modules registers them; kept lazy so `import workbench.tasks` stays light.
    from workbench.tasks import eyes_pog, face_angles, face_eye_lola, look_at_me, plane_pog  # noqa: F401
