"""Task contracts: inputs, targets, loss, metrics and the scalar to explain, one per task."""

from workbench.tasks.base import MetricAccumulator, Task, TaskData
from workbench.tasks.registry import get_task, list_tasks, register_task

__all__ = ["Task", "TaskData", "MetricAccumulator", "get_task", "list_tasks", "register_task"]
