"""Shared CLI helpers: consoles, progress bars, JSON output, and the error boundary."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from workbench.errors import WorkbenchError, path_error
from workbench.progress import err_console, progress_bar  # noqa: F401  (re-exported to the commands)
from workbench.utils.jsonio import json_default

console = Console()


def user_errors(fn: Callable) -> Callable:
    """Turn a WorkbenchError raised by a command into one line on stderr and exit code 2.

    Typer runs commands inside click's own error handling, so the boundary sits on each command
    (CliRunner in the tests sees the same behaviour as the console script).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_options(kwargs)
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            print_error(str(exc))
            raise typer.Exit(2) from None
        except OSError as exc:
            problem = path_error(exc)
            if problem is None:
                raise
            print_error(str(problem))
            raise typer.Exit(2) from None

    return wrapper


# Counts and sizes every command takes by these names: at least 1 (a batch of 0, 0 samples or 0 threads is
# never meant), or at least 0. Typer hands over any integer, so each is also bounded: a count beyond 2**31
# is a typo, not a request (it overflowed deep inside torch, numpy or onnxruntime).
_AT_LEAST_1 = {"n", "batch_size", "steps", "cascade_steps", "randomization_n", "random_orders", "max_ablate",
               "conductance_samples", "conductance_steps", "subjects", "n_train", "n_val", "n_calib", "n_eval",
               "threads", "repeats", "resize", "stride", "depth", "top", "batch", "samples", "calib_samples",
               "finetune_samples", "frames", "cycle", "epochs", "steps_per_epoch"}
_AT_LEAST_0 = {"seed", "warmup", "finetune_epochs", "final_epochs"}
_LARGEST = 2 ** 31 - 1
# Options that name what a command writes: "" (the current folder, after Path("")) is never a place to write.
_OUTPUTS = {"out", "onnx"}


def check_options(kwargs: dict[str, Any]) -> None:
    """The checks every command shares, on its parsed options, before it does any work."""
    for name, value in kwargs.items():
        option = "--" + name.replace("_", "-")
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > _LARGEST:
                raise WorkbenchError(f"{option} {value}: too large")
            if name in _AT_LEAST_1 and value < 1:
                raise WorkbenchError(f"{option} must be at least 1, got {value}")
            if name in _AT_LEAST_0 and value < 0:
                raise WorkbenchError(f"{option} must be 0 or more, got {value}")
        if name in _OUTPUTS and isinstance(value, Path) and str(value) in ("", "."):
            raise WorkbenchError(f"{option}: give a new file or folder name, not the current folder")


def print_error(message: str) -> None:
    """One line on stderr, never wrapped: scripts and people both read it whole."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def print_json(obj: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, indent=2, default=json_default) + "\n")


def parse_sets(items: list[str] | None, what: str) -> dict[str, Any]:
    """`key=value` pairs (`--set`, `--model`); values parsed as JSON when they are valid JSON (numbers,
    lists, true/false), else kept as strings; dashes in keys become underscores."""
    out = {}
    for item in items or []:
        if "=" not in item:
            fail(f"{what} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    if what == "--model" and "preset" in out:
        fail(f"--model preset={out['preset']}: the preset is its own option, --preset")
    if "" in out:
        fail(f"{what} expects key=value, got an empty key")
    return out


def model_run(model: str, *, task: str | None = None, weights: Any = None, preset: str | None = None,
              model_sets: list[str] | None = None, data: str | None = None, fmt: str | None = None,
              device: str | None = None) -> contextlib.AbstractContextManager:
    """A run folder for the MODEL argument of a command (see :func:`workbench.modelspec.run_for_spec`):
    the folder itself, or a temporary run holding a named or ``module:factory`` model. ``data`` (a path)
    becomes such a model's own data; 'val', 'train' and 'synth' leave it on SynthGaze. ``device`` is
    checked first, so a missing GPU is one line before any work."""
    from workbench.modelspec import resolve_device, run_for_spec

    if device is not None:
        resolve_device(device)
    own = data if data not in (None, "val", "train", "synth") else None
    return run_for_spec(model, task=task, weights=weights, preset=preset,
                        overrides=parse_sets(model_sets, "--model"), data=own, fmt=fmt if own else None)


def fail(message: str) -> None:
    """Raise the one-line user error for a bad option combination."""
    raise WorkbenchError(message)


# Help texts and number formats the commands share.
SPEC_HELP = ("A run folder, a teacher name, or package.module:factory with --task (the working directory "
             "is importable).")
FACTORY_TASK_HELP = ("Task of a package.module:factory model: it is checked against the task and fed its inputs "
                     "(see `workbench teachers`, column task).")
WEIGHTS_HELP = "State dict file loaded into a name or factory model (torch.load weights_only=True)."
DEVICE_HELP = "auto, cpu or cuda[:N]."

# The options that pick and build a model, declared once for every command that takes one (a command whose
# option means something else, e.g. distill's --model for the student, declares its own).
TaskOption = Annotated[Optional[str], typer.Option("--task", help=FACTORY_TASK_HELP)]
WeightsOption = Annotated[Optional[Path], typer.Option("--weights", help=WEIGHTS_HELP)]
PresetOption = Annotated[Optional[str], typer.Option("--preset", help="Preset of a teacher or student name.")]
ModelSetsOption = Annotated[list[str], typer.Option("--model", help="Model option key=value; repeatable.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON (no progress bars).")]


def print_key_values(title: str, rows: Iterable[tuple[str, str]], *, key: str = "metric") -> None:
    """A two-column table (``key``, value right-aligned) on stdout: the shape of every one-record summary."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(key)
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def macs_text(macs: int | None) -> str:
    """MACs as G above 1e8, else M with two decimals; n/a when not counted."""
    return "n/a" if macs is None else f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.2f} M"


def metric_text(value: float | None) -> str:
    """A metric to four significant digits; n/a when absent."""
    return "n/a" if value is None else f"{value:.4g}"
