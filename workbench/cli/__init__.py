"""The `workbench` command line. Commands are thin: parse, call one library function, print.

Errors a user can cause (WorkbenchError) end as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from workbench.cli._common import console, err_console, print_error
from workbench.errors import WorkbenchError

app = typer.Typer(
    name="workbench",
    help="Train, explain and compress gaze-estimation models on SynthGaze or real data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from workbench.cli import analyze as analyze_cli
    from workbench.cli import compress as compress_cli
    from workbench.cli import data as data_cli
    from workbench.cli import distill as distill_cli
    from workbench.cli import pipeline as pipeline_cli
    from workbench.cli import profile as profile_cli
    from workbench.cli import prune as prune_cli
    from workbench.cli import quantize as quantize_cli
    from workbench.cli import students as students_cli
    from workbench.cli import train as train_cli
    from workbench.cli import visualize as visualize_cli

    app.add_typer(data_cli.app, name="data")
    for module in (train_cli, profile_cli, analyze_cli, prune_cli, students_cli, distill_cli, quantize_cli,
                   compress_cli, visualize_cli, pipeline_cli):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except WorkbenchError as exc:
        print_error(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)


__all__ = ["app", "main", "console"]
