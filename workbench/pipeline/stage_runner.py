"""The stage runner: run a teacher's stages in order, skipping those already done with the same config.

Each stage writes into ``<teacher_dir>/<stage>/`` and, when it finishes, a done-marker ``stage.json``
holding a key: the hash of the stage's config and of the keys of the stages it reads. On the next run a
stage whose marker holds the same key, and whose recorded files all still exist, is skipped; so an
interrupted run continues where it stopped, and a changed config reruns that stage and every stage that
reads its outputs (their keys change with it). A stage that is not done is started over in a fresh
folder, except a resumable one (training) that was interrupted with the same key: it continues.

A stage failure becomes one line naming the teacher, the stage and the folder to look at; the full
message or traceback goes to ``<stage>/error.log``.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError, path_error
from workbench.utils.jsonio import json_native, read_json, write_json

MARKER = "stage.json"
ERROR_LOG = "error.log"


class StageFailed(WorkbenchError):
    """A stage raised a WorkbenchError (a problem with the input or the options): exit code 2."""


class StageCrashed(Exception):
    """A stage raised an unexpected exception (a bug): one line, the traceback in error.log."""

    def __init__(self, message: str, log: Path) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: ``fn(ctx) -> summary`` (JSON-native dict), reading ``needs``' outputs."""

    name: str
    fn: Callable[[StageContext], dict[str, Any]]
    needs: tuple[str, ...] = ()
    resumable: bool = False  # an interrupted run with the same key continues in its folder
    doc: str = ""
    # Stages read only for some configs (e.g. pruning by the analysis' FC importance): config -> names.
    needs_if: Callable[[dict[str, Any]], tuple[str, ...]] | None = None
    # Optional stages (e.g. compress): config -> whether the stage runs at all; one that does not has no folder.
    runs_if: Callable[[dict[str, Any]], bool] | None = None

    def needs_for(self, config: dict[str, Any]) -> tuple[str, ...]:
        return self.needs + (tuple(n for n in self.needs_if(config) if n not in self.needs) if self.needs_if else ())


@dataclass
class StageResult:
    name: str
    dir: Path
    key: str
    summary: dict[str, Any]
    status: str  # "ran" | "skipped"
    seconds: float


@dataclass
class StageContext:
    """What a stage function gets: its folder (not created yet when starting fresh), its config, and
    the results of the stages it needs."""

    teacher: str
    name: str
    dir: Path
    config: dict[str, Any]
    inputs: dict[str, StageResult]
    resume: bool = False
    progress: bool = True
    calls: list[str] = field(default_factory=list)  # the library calls the stage made, for the report

    def record(self, call: str) -> None:
        """Note one library call (shown in the report as the exact command that produced a result)."""
        self.calls.append(call)


def stage_key(name: str, config: dict[str, Any], needs: dict[str, str]) -> str:
    """The hash of a stage's config and of its inputs' keys (16 hex digits)."""
    blob = json.dumps({"stage": name, "config": config, "needs": needs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_marker(stage_dir: Path) -> dict[str, Any] | None:
    """The done-marker of a stage folder, or None when the stage has not finished there."""
    marker = read_json(Path(stage_dir) / MARKER, default=None)
    return marker if isinstance(marker, dict) and "key" in marker else None


def _files(stage_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(stage_dir)) for p in stage_dir.rglob("*")
                  if p.is_file() and p.name not in (MARKER, ERROR_LOG))


def _up_to_date(stage_dir: Path, key: str) -> dict[str, Any] | None:
    marker = read_marker(stage_dir)
    if marker is None or marker.get("key") != key:
        return None
    if not all((stage_dir / f).is_file() for f in marker.get("files", [])):
        return None
    return marker


def _started_path(teacher_dir: Path, name: str) -> Path:
    return teacher_dir / f".{name}.started.json"


def run_stages(
    teacher_dir: str | Path,
    teacher: str,
    stages: list[Stage],
    configs: dict[str, dict[str, Any]],
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, StageResult]:
    """Run ``stages`` in order for one teacher; returns every stage's result (run or skipped)."""
    teacher_dir = Path(teacher_dir)
    teacher_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, StageResult] = {}
    for stage in stages:
        config = configs.get(stage.name, {})
        if stage.runs_if is not None and not stage.runs_if(config):
            continue
        needs = stage.needs_for(config)
        missing = [n for n in needs if n not in results]
        if missing:
            raise ValueError(f"stage {stage.name!r} needs {missing}, which run after it or are not defined")
        key = stage_key(stage.name, config, {n: results[n].key for n in needs})
        sdir = teacher_dir / stage.name
        marker = _up_to_date(sdir, key)
        if marker is not None:
            results[stage.name] = StageResult(stage.name, sdir, key, marker.get("summary", {}), "skipped", 0.0)
            log(f"{teacher} · {stage.name}: up to date, skipped ({sdir})")
            continue
        results[stage.name] = _run_one(stage, teacher, teacher_dir, sdir, config, key,
                                       {n: results[n] for n in needs}, progress, log)
    return results


def _run_one(stage: Stage, teacher: str, teacher_dir: Path, sdir: Path, config: dict[str, Any], key: str,
             inputs: dict[str, StageResult], progress: bool, log: Callable[[str], None]) -> StageResult:
    started = _started_path(teacher_dir, stage.name)
    old = read_marker(sdir)
    resume = False
    if stage.resumable and sdir.exists() and old is None:
        resume = (read_json(started, default=None) or {}).get("key") == key
    if sdir.exists() and not resume:
        why = "config changed" if old is not None else "unfinished or failed earlier"
        log(f"{teacher} · {stage.name}: {why}, starting it over in {sdir}")
        shutil.rmtree(sdir)
    elif resume:
        log(f"{teacher} · {stage.name}: continuing the interrupted stage in {sdir}")
    else:
        log(f"{teacher} · {stage.name}: running ({sdir})")
    _clear_interrupted_writes(sdir, resume)
    write_json(started, {"key": key, "time": time.time()})
    ctx = StageContext(teacher=teacher, name=stage.name, dir=sdir, config=config, inputs=inputs, resume=resume,
                       progress=progress)
    t0, c0 = time.time(), _cpu_seconds()
    try:
        summary = json_native(stage.fn(ctx) or {})
    except WorkbenchError as exc:
        msg = " ".join(str(exc).split())
        _write_error(sdir, f"stage {stage.name} ({teacher}) failed: {msg}\n")
        raise StageFailed(f"stage {stage.name!r} failed for {teacher}: {msg} (look in {sdir})") from exc
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        problem = path_error(exc)
        if problem is not None:  # a full disk or read-only --out: the user's to fix, not a crash
            raise StageFailed(f"stage {stage.name!r} failed for {teacher}: {problem}") from exc
        _write_error(sdir, traceback.format_exc())
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise StageCrashed(f"stage {stage.name!r} crashed for {teacher}: {type(exc).__name__}: {first} "
                           f"(traceback in {sdir / ERROR_LOG})", sdir / ERROR_LOG) from exc
    seconds, cpu = round(time.time() - t0, 2), round(_cpu_seconds() - c0, 2)
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / ERROR_LOG).unlink(missing_ok=True)
    write_json(sdir / MARKER, {
        "stage": stage.name, "teacher": teacher, "key": key, "config": config,
        "needs": {n: r.key for n, r in inputs.items()}, "summary": summary, "calls": ctx.calls,
        "files": _files(sdir), "seconds": seconds, "cpu_seconds": cpu, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    started.unlink(missing_ok=True)
    log(f"{teacher} · {stage.name}: done in {seconds:.0f} s ({cpu:.0f} s of CPU)")
    return StageResult(stage.name, sdir, key, summary, "ran", seconds)


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system): what a stage costs on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _clear_interrupted_writes(sdir: Path, resume: bool) -> None:
    """Remove what a killed earlier attempt of a stage left half-written: the temporary folders of atomic
    writes (``.<name>.<random>.tmp``, :func:`workbench.utils.io.atomic_path`) beside the stage folder (stages
    that write their folder in one piece) and, when the stage continues in its folder (train), inside it
    (e.g. a checkpoint cut mid-save). The run folder is locked, so none of them is being written now."""
    stale = list(sdir.parent.glob(f".{sdir.name}.*.tmp"))
    if resume and sdir.is_dir():
        stale += list(sdir.rglob(".*.tmp"))
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def _write_error(sdir: Path, text: str) -> None:
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / ERROR_LOG).write_text(text)
