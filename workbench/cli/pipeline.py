"""`workbench run | report`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from workbench.cli._common import err_console, print_error, print_json, user_errors
from workbench.errors import WorkbenchError

_RUN_HELP = (
    "Run the whole path on SynthGaze, or on your model (--model) and data (--data): train the teacher, analyze it, prune, distill (with a control), quantize, "
    "profile and benchmark every model, export ONNX, and write the report.\n\n"
    "Without RECIPE the defaults run gazenet (examples/demo.toml documents every field). Each stage writes into "
    "OUT/TEACHER/STAGE/ and is skipped on the next run when its outputs exist with the same config, so an "
    "interrupted run continues where it stopped; a changed field reruns its stage and the stages that read its "
    "outputs. A failed stage names its folder; its error.log holds the details.\n\n"
    "Recipe fields (TOML):\n\n"
)


def _run_help() -> str:
    from workbench.pipeline.recipe import describe_fields

    # Two line breaks keep rich from joining the lines; brackets escaped so rich does not read them as markup.
    return _RUN_HELP + "\n\n".join(line.replace("[", "\\[") for line in describe_fields().splitlines())


def run_cmd(
    recipe: Optional[Path] = typer.Argument(None, help="A TOML recipe (default: the built-in demo recipe on gazenet)."),
    teachers: Optional[str] = typer.Option(None, "--teachers", help="Comma-separated teachers, or 'all' (overrides the recipe)."),
    out: Optional[str] = typer.Option(None, "--out", help="Run folder (overrides the recipe's `out`)."),
    model: Optional[str] = typer.Option(None, "--model", help="Any model spec instead of the teachers: a name, or "
                                        "package.module:factory with --task (overrides the recipe's `model`)."),
    task: Optional[str] = typer.Option(None, "--task", help="Task of a package.module:factory --model."),
    data: Optional[str] = typer.Option(None, "--data", help="'synth' or a data set path (overrides the recipe's `data`)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Layout of --data (default: detected)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:N] (overrides the recipe's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON (stage lines still go to stderr)."),
) -> None:
    from workbench.pipeline import StageCrashed, load_recipe, run_pipeline

    if teachers and model:
        raise WorkbenchError("give either --teachers or --model, not both")
    command = _command("run", recipe, ("--teachers", teachers), ("--model", model), ("--task", task),
                       ("--data", data), ("--format", fmt), ("--device", device), ("--out", out), ("--json", as_json))
    names = [t.strip() for t in teachers.split(",") if t.strip()] if teachers else None
    rec = load_recipe(recipe, teachers=names, out=out, model=model, task=task, data_source=data, fmt=fmt, device=device)
    err_console.print(f"workbench run: {', '.join(rec.teachers)} -> {rec.out}", markup=False, highlight=False,
                      soft_wrap=True)
    try:
        summary = run_pipeline(rec, progress=not as_json, command=command,
                               log=lambda line: err_console.print(line, markup=False, highlight=False, soft_wrap=True))
    except StageCrashed as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None
    if as_json:
        print_json(summary)
        return
    sys.stdout.write(f"report: {summary['report']}\n")


def report_cmd(
    runs: List[Path] = typer.Argument(..., help="Pipeline run folders (or one teacher's folder, or a training run folder)."),
    out: Path = typer.Option(..., "--out", help="Report folder, e.g. reports/NAME."),
    force: bool = typer.Option(False, "--force", help="Replace an existing report folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's summary as JSON."),
) -> None:
    """Write index.html (opens from disk, no server), report.md and report.json from run folders."""
    from workbench.report import build_report

    command = _command("report", *runs, ("--out", out), ("--force", force), ("--json", as_json))
    result = build_report(runs, out, force=force, command=command, progress=not as_json)
    for warning in result["warnings"]:
        sys.stderr.write(f"warning: {warning}\n")
    if as_json:
        print_json(result)
        return
    sys.stdout.write(f"report: {result['index']}\n")


def _command(name: str, *parts: object) -> str:
    """The command line as the parsed options give it (arguments, then (option, value) pairs; flags
    when true), shell-quoted: what the report shows as the command that produced it."""
    words = ["workbench", name]
    for part in parts:
        if isinstance(part, tuple):
            option, value = part
            if value is True:
                words.append(option)
            elif value not in (None, False):
                words += [option, str(value)]
        elif part is not None:
            words.append(str(part))
    return shlex.join(words)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("run", help=_run_help())(user_errors(run_cmd))
    app.command("report")(user_errors(report_cmd))
