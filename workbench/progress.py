"""Progress of long loops: one protocol for the library and the CLI alike.

A *progress* is a factory ``progress(description, total)`` returning a context manager that yields
``advance(k=1, status="")`` (``status``: text shown after the bar, e.g. the running loss). Library
functions take ``progress: Progress | bool``: ``True`` draws a rich bar on stderr, ``False`` is silent,
and a callable is used as it is (a notebook's own bar, a test's recorder). This module sits below the
library, so no library module needs the CLI to show a bar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Union

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as _RichProgress, TextColumn, TimeElapsedColumn
from rich.progress import TimeRemainingColumn

Advance = Callable[..., None]
Progress = Callable[[str, int], contextlib.AbstractContextManager[Advance]]
ProgressArg = Union[Progress, bool]

err_console = Console(stderr=True)


def no_progress(description: str, total: int) -> contextlib.AbstractContextManager[Advance]:
    """The silent progress: its ``advance`` does nothing."""
    return contextlib.nullcontext(lambda k=1, status="": None)


@contextlib.contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True,
                 transient: bool = False) -> Iterator[Advance]:
    """A rich progress bar on stderr; yields ``advance(k, status="")``. Disabled (silent) for --json
    output; ``transient`` clears it when done."""
    if not enabled:
        yield lambda k=1, status="": None
        return
    with _RichProgress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=err_console, transient=transient,
    ) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(k: int = 1, status: str = "") -> None:
            bar.update(task, advance=k, **({"status": status} if status else {}))

        yield advance


def bars(enabled: bool = True) -> Progress:
    """The rich progress as a factory: ``bars()(description, total)`` is :func:`progress_bar`."""
    return lambda description, total: progress_bar(description, total, enabled=enabled)


def as_progress(progress: ProgressArg | None) -> Progress:
    """The factory for a ``progress`` argument: a bool picks rich bars or silence, a callable is kept."""
    if progress is None or progress is False:
        return no_progress
    if progress is True:
        return bars(True)
    if callable(progress):
        return progress
    raise TypeError(f"progress: expected a bool or a (description, total) factory, got {type(progress).__name__}")
