"""`workbench run`: every stage for every teacher of a recipe, then one report.

The run folder::

    <out>/pipeline.json          the recipe, and every invocation (command, versions, git commit, status)
    <out>/<teacher>/<stage>/     one folder per stage (see workbench.pipeline.stages), each with stage.json
    <out>/report/                the report (unless [report] out says elsewhere)
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.pipeline.provenance import provenance
from workbench.pipeline.recipe import PipelineRecipe
from workbench.pipeline.stage_runner import MARKER, Stage, run_stages
from workbench.utils.jsonio import read_json, write_json
from workbench.pipeline.stages import STAGES, stage_configs

PIPELINE_FILE = "pipeline.json"


def report_dir(recipe: PipelineRecipe) -> Path:
    return Path(recipe.report.out) if recipe.report.out else Path(recipe.out) / "report"


def _read_pipeline(path: Path) -> dict[str, Any]:
    data = read_json(path, default={})
    return data if isinstance(data, dict) else {}


def run_pipeline(
    recipe: PipelineRecipe,
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
    command: str | None = None,
    stages: list[Stage] | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Run (or continue) the pipeline of ``recipe``; returns the summary (also in pipeline.json)."""
    root = Path(recipe.out)
    _check_data(recipe)  # a missing or unreadable data set is one line before any folder is made
    fresh = not root.exists()
    made = root  # the outermost folder this call creates (runs/ as well as runs/demo/ on a new machine)
    while not made.parent.exists():
        made = made.parent
    root.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(root):
            return _run(recipe, root, progress=progress, log=log, command=command,
                        stages=STAGES if stages is None else stages, report=report)
    except WorkbenchError as exc:
        # A new run folder in which no stage finished holds nothing worth keeping: a user's mistake (data
        # that does not read, a model that does not fit) leaves no folder to clean up before the rerun.
        if fresh and not any(root.glob(f"*/*/{MARKER}")):
            shutil.rmtree(made, ignore_errors=True)
            raise WorkbenchError(str(exc).split(" (look in ")[0]) from None
        raise


def _check_data(recipe: PipelineRecipe) -> None:
    if recipe.data == "synth":
        return
    from workbench.data import formats

    path = Path(recipe.data)
    if not path.exists():
        raise WorkbenchError(f"{path}: no such data folder")
    formats.get_format(recipe.format or formats.detect_format(path))


def _clear_interrupted_report(out: Path, root: Path) -> None:
    """Remove the temporary folders a killed earlier report write left beside the report folder
    (``.report.<random>.tmp``, workbench.utils.io.atomic_path); only inside the run folder, which this
    run holds locked (a report folder elsewhere may be written by someone else right now)."""
    if not out.resolve().is_relative_to(root.resolve()):
        return
    for p in out.parent.glob(f".{out.name}.*.tmp"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold <out>/.lock: two runs writing the same stage folders would corrupt each other's outputs."""
    with open(root / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkbenchError(f"{root}: another `workbench run` is using this run folder; wait for it to "
                                 "finish (or stop it) and run again") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(recipe: PipelineRecipe, root: Path, *, progress: bool, log: Callable[[str], None], command: str | None,
         stages: list[Stage], report: bool) -> dict[str, Any]:
    import torch

    pfile = root / PIPELINE_FILE
    state = _read_pipeline(pfile)
    recipe_text = Path(recipe.source).read_text() if recipe.source else None
    invocation = {**provenance(command), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": "running",
                  "recipe": recipe.to_dict(), "recipe_file": recipe.source, "recipe_text": recipe_text}
    invocations = [*state.get("invocations", []), invocation]
    write_json(pfile, {"recipe": recipe.to_dict(), "teachers": list(recipe.teachers), "invocations": invocations})
    t0 = time.time()
    summary: dict[str, Any] = {"out": str(root), "teachers": {}}
    threads = torch.get_num_threads()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    try:
        for teacher in recipe.teachers:
            results = run_stages(root / teacher, teacher, stages, stage_configs(recipe, teacher),
                                 progress=progress, log=log)
            summary["teachers"][teacher] = {n: {"status": r.status, "seconds": r.seconds, "dir": str(r.dir)}
                                            for n, r in results.items()}
        invocation["status"] = "done"
        invocation["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        invocation["seconds"] = round(time.time() - t0, 1)
        write_json(pfile, {"recipe": recipe.to_dict(), "teachers": list(recipe.teachers), "invocations": invocations,
                           "summary": summary})
        if report:
            from workbench.report import build_report

            out = report_dir(recipe)
            if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
                raise WorkbenchError(f"{out}: [report] out is a folder that holds something other than a report; "
                                     "choose another folder (the report replaces its folder)")
            _clear_interrupted_report(out, root)
            log(f"report: writing {out}")
            rep = build_report([root], out, force=True, command=command, progress=progress)
            summary["report"] = rep["index"]
    except BaseException as exc:
        invocation["status"] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        raise
    finally:
        torch.set_num_threads(threads)
        invocation["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        invocation["seconds"] = round(time.time() - t0, 1)
        write_json(pfile, {"recipe": recipe.to_dict(), "teachers": list(recipe.teachers), "invocations": invocations,
                           "summary": summary})
    summary["seconds"] = round(time.time() - t0, 1)
    return summary
