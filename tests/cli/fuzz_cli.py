"""Fuzzing the `workbench` command line with Hypothesis (issue 19, "No tracebacks, no debris").

Shared by tests/cli/test_fuzz_cli.py (a bounded, derandomized run in the normal suite) and
benchmarks/fuzz_cli.py (N examples per command, a table of outcomes, the failing argv's).

The property, for every command: generated option values (wrong types, zero and negative sizes, empty
strings, unknown keys, missing paths, files of the wrong kind, truncated JSON/TOML/checkpoints) run through
the real Typer app end with exit code 0 or 2, never a traceback; nothing new appears outside ``--out``
(each case runs with a fresh working directory and a fresh temp dir, and the shared fixtures are watched
too); nothing is left at ``--out`` when the exit code is 2; a file or non-empty folder already at ``--out``
is not replaced without ``--force`` (DESIGN.md: nothing is overwritten silently); and ``--json`` with exit
code 0 prints JSON.

Cases are kept cheap: every case carries at least one value drawn from the invalid pool (so most end at
argument checking), budgets are tiny where a value is valid (1 epoch, a few samples), and a per-case
alarm stops anything that still runs long (reported as a timeout, not as a failure).

argv's are written with placeholders (``@run`` = the tiny trained gazenet run, ``@png`` = a PNG, ...;
see tests/cli/fuzz_fixtures.py; ``@long`` and ``@nul`` are a too-long name and one with a NUL byte; the value
pools of every option are in tests/cli/fuzz_specs.py), so a reported case reads, and reproduces, the same on every machine:
``python benchmarks/fuzz_cli.py --case "eval @run_cfglist"`` prints its outcome with the traceback.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]

# Failures found and not yet fixed, keyed by (command, reason) as Session.run names them (the reason names
# the exception and the innermost function of this project, not a line number, so it survives edits), each
# with one argv that shows it (placeholders: see build_fixtures; rerun one with
# `python benchmarks/fuzz_cli.py --case "ARGV"`). The bounded test passes while every failure it sees is
# listed here; the benchmark counts them apart. Fixing one means moving its entry to
# tests/cli/fuzz_found.py (FIXED), whose every argv test_fuzz_cli.py reruns.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


from cli.fuzz_fixtures import build_fixtures  # noqa: E402  (the files the cases run on)


from cli.fuzz_specs import (  # noqa: E402  (what each command accepts; re-exported)
    COMMANDS, CWD_ITEMS, TOKENS, CommandSpec, Opt,
)


@dataclass(frozen=True)
class Case:
    command: str
    argv: tuple[str, ...]  # with placeholders
    out: str | None  # the --out value (relative to the case folder), None when not given

    def show(self) -> str:
        return "workbench " + " ".join(_quote(a) for a in self.argv)


def _quote(a: str) -> str:
    import shlex

    return shlex.quote(a)


@st.composite
def cases(draw, spec: CommandSpec) -> Case:
    """One case of ``spec``: its required arguments, a few optional ones, at least one value from a bad pool."""
    optional = [o for o in spec.opts if not o.required and o.flag is not None]
    extra = draw(st.lists(st.sampled_from(optional), max_size=4, unique_by=id)) if optional else []
    # Optional positionals come along only sometimes (the second run of `visualize` / `report`).
    chosen = [o for o in spec.opts if o.required or (o.flag is None and draw(st.booleans()))] + extra
    values: list[tuple[Opt, str | None]] = []
    forced_i = None
    if spec.fail_fast:
        forced = draw(st.sampled_from(spec.fail_fast))
        # the forced value must not be overridden: drop drawn options of the same flag (or the positional)
        chosen = [o for o in chosen if o.flag != forced.flag]
        forced_value = (forced, draw(st.sampled_from(forced.bad)))
    else:
        badable = [i for i, o in enumerate(chosen) if o.bad]
        if badable:
            forced_i = draw(st.sampled_from(badable))
        else:  # nothing with a bad pool was drawn: an unknown option is always wrong
            values.append((Opt("--no-such-option"), None))
    for i, o in enumerate(chosen):
        if o.is_flag:
            values.append((o, None))
            continue
        bad = i == forced_i or (bool(o.bad) and draw(st.integers(0, 4)) == 0)
        pool = o.bad if (bad or not o.ok) else o.ok
        if pool:
            values.append((o, draw(st.sampled_from(pool))))
    if spec.fail_fast:
        values.append(forced_value)
    argv = list(spec.words) + [v for o, v in values if o.flag is None] + list(spec.base)
    out = spec.base[spec.base.index("--out") + 1] if "--out" in spec.base else None
    for o, v in values:
        if o.flag is None:
            continue
        if v is None:
            argv.append(o.flag)
        elif v.startswith("-"):  # would read as an option: a user writes --flag=-1
            argv.append(f"{o.flag}={v}")
        else:
            argv += [o.flag, v]
        if o.flag == spec.out_flag and v is not None:
            out = v
    return Case(spec.name, tuple(argv), out)


# ---------------------------------------------------------------------------------------------------------
# The property checker.


class CaseTimeout(BaseException):
    """Raised by the per-case alarm; a BaseException so CliRunner does not swallow it as the command's error."""


@dataclass
class Outcome:
    case: Case
    exit_code: int | None
    seconds: float
    kind: str  # ok0, ok2, traceback, exit, json (exit 0 with --json, stdout not JSON), debris, timeout
    reasons: list[str] = field(default_factory=list)  # short, stable: the KNOWN_FAILURES key is (command, reasons[0])
    last_line: str = ""
    details: str = ""  # traceback tail, or the debris paths

    @property
    def failed(self) -> bool:
        return self.kind in ("traceback", "exit", "json", "debris")

    @property
    def known(self) -> bool:
        return self.failed and (self.case.command, self.reasons[0]) in KNOWN_FAILURES

    def to_dict(self) -> dict:
        return {"command": self.case.command, "argv": list(self.case.argv), "shell": self.case.show(),
                "exit_code": self.exit_code, "seconds": round(self.seconds, 3), "kind": self.kind,
                "reasons": self.reasons, "known": self.known, "last_line": self.last_line, "details": self.details}


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = ("dir",)
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                st_ = os.lstat(p)
                out[os.path.normpath(os.path.join(rel, f))] = (st_.st_size, st_.st_mtime_ns)
            except OSError:
                pass
    return out


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))


def _innermost(exc: BaseException) -> tuple[str, str]:
    """(stable reason, detail) of an exception: its type and the innermost frame in this project's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(REPO)) and "/tests/" not in f.filename] or frames
    f = ours[-1] if ours else None
    where = f"{os.path.relpath(f.filename, REPO)}:{f.name}" if f else "?"
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    detail = (f"{os.path.relpath(f.filename, REPO)}:{f.lineno} in {f.name}: " if f else "") + \
        f"{type(exc).__name__}: {str(exc)[:300]}\n{tail}"
    return f"{type(exc).__name__} in {where}", detail


class Session:
    """Fixtures, and the runner of one case at a time (each in a fresh working directory and temp dir)."""

    def __init__(self, root: Path, fixtures: dict[str, Path] | None = None):
        self.root = Path(root)
        self.fx = {**(fixtures if fixtures is not None else build_fixtures(self.root / "fixtures")), **TOKENS}
        self.fixtures_root = self.root / "fixtures"
        self._fixture_state = _snapshot(self.fixtures_root)
        self._count = 0
        self._sub = re.compile("|".join(re.escape(k) for k in sorted(self.fx, key=len, reverse=True)))

    def resolve(self, token: str) -> str:
        return self._sub.sub(lambda m: str(self.fx[m.group(0)]), token)

    def unresolve(self, text: str, cwd: Path) -> str:
        for key, path in sorted(self.fx.items(), key=lambda kv: -len(str(kv[1]))):
            text = text.replace(str(path), key)
        return text.replace(str(cwd) + "/", "").replace(str(cwd), ".")

    def run(self, case: Case, timeout: float = 20.0) -> Outcome:
        from typer.testing import CliRunner

        from workbench.cli import app

        self._count += 1
        cwd = self.root / "cases" / str(self._count)
        tmp = self.root / "tmp" / str(self._count)
        cwd.mkdir(parents=True)
        tmp.mkdir(parents=True)
        for name, kind in CWD_ITEMS.items():
            if any(a == name or a.startswith(name + "/") for a in case.argv):
                if kind == "file":
                    (cwd / name).write_bytes(self.fx["@png"].read_bytes())
                else:
                    (cwd / name).mkdir()
                    if kind == "dir":
                        (cwd / name / "keep.txt").write_text("keep\n")
        before = _snapshot(cwd)
        argv = [self.resolve(a) for a in case.argv]
        old_cwd, old_tmp, old_env = os.getcwd(), tempfile.tempdir, os.environ.get("TMPDIR")
        res, timed_out = None, False

        def alarm(signum, frame):
            raise CaseTimeout()

        old_handler = signal.signal(signal.SIGALRM, alarm)
        t0 = time.perf_counter()
        try:
            os.chdir(cwd)
            tempfile.tempdir, os.environ["TMPDIR"] = str(tmp), str(tmp)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            res = CliRunner().invoke(app, argv)
        except CaseTimeout:
            timed_out = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            seconds = time.perf_counter() - t0
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
            if old_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old_env
            _reset_globals()
        try:
            return self._judge(case, res, timed_out, seconds, cwd, tmp, before)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)

    def _judge(self, case, res, timed_out, seconds, cwd, tmp, before) -> Outcome:
        if timed_out:
            self._fixture_state = _snapshot(self.fixtures_root)
            return Outcome(case, None, seconds, "timeout", ["timeout"], details="stopped by the per-case alarm")
        output = self.unresolve(res.output, cwd)
        lines = [ln for ln in output.splitlines() if ln.strip()]
        last = lines[-1].strip()[:300] if lines else ""
        kind_reasons: list[tuple[str, str, str]] = []  # (kind, reason, detail)
        exc = res.exception
        if exc is not None and not isinstance(exc, SystemExit):
            reason, detail = _innermost(exc)
            kind_reasons.append(("traceback", reason, self.unresolve(detail, cwd)))
        elif "Traceback (most recent call last)" in output:
            kind_reasons.append(("traceback", "Traceback printed", output[-1500:]))
        code = res.exit_code
        if code not in (0, 2) and not kind_reasons:
            norm = re.sub(r"\d+(\.\d+)?", "N", last)[:70]
            kind_reasons.append(("exit", f"exit {code}: {norm}", output[-1500:]))
        if code == 0 and "--json" in case.argv and not kind_reasons:
            try:
                json.loads(res.stdout)
            except ValueError as exc:
                kind_reasons.append(("json", "--json output is not JSON", f"{exc}: {res.stdout[:300]!r}"))
        # Debris: new or changed paths in the working directory outside --out; temp files; fixtures touched.
        after = _snapshot(cwd)
        out_rel = None
        if case.out:
            try:
                out_rel = os.path.normpath(case.out)
            except ValueError:
                out_rel = None
            if out_rel in (".", "") or out_rel.startswith(".."):
                out_rel = None
        changed = _changed(before, after)
        if out_rel:
            inside = [p for p in changed if p.rstrip("/") == out_rel or p.startswith(out_rel + "/")]
        else:  # no --out: the command's default output place
            patterns = COMMANDS[case.command].default_out
            inside = [p for p in changed if any(fnmatch.fnmatch(p.rstrip("/"), pat) for pat in patterns)]
        outside = [p for p in changed if p not in inside and p != "./"]
        if outside:
            top = sorted({p.split("/")[0] + ("/" if "/" in p.rstrip("/") or p.endswith("/") else "") for p in outside})
            kind_reasons.append(("debris", "files outside --out: " + ", ".join(top[:3]), "\n".join(outside[:20])))
        # "Nothing is overwritten silently" (DESIGN.md): a file or non-empty folder at --out before the case
        # is kept unless --force (or --resume) is given.
        held = [p for p in before if out_rel and p not in ("./", out_rel + "/")
                and (p.rstrip("/") == out_rel or p.startswith(out_rel + "/"))]
        if held and not {"--force", "--resume"} & set(case.argv) and any(before[p] != after.get(p) for p in held):
            kind_reasons.append(("debris", "replaced an existing --out without --force",
                                 "\n".join(p for p in held if before[p] != after.get(p))))
        if code == 2 and inside:
            what = "--out" if out_rel else "the default output"
            kind_reasons.append(("debris", f"exit 2 left {what}", "\n".join(inside[:20])))
        # Not debris: torch's compile cache (torchinductor_<user>/) and onnxruntime's session id file (.ses), made
        # by those libraries' own code on first use in a process and reused by them.
        leftovers = sorted(p for p in _snapshot(tmp) if p not in ("./", ".ses") and not p.startswith("torchinductor_"))
        if leftovers:
            kind_reasons.append(("debris", "temp files left", "\n".join(leftovers[:20])))
        fixture_state = _snapshot(self.fixtures_root)
        touched = _changed(self._fixture_state, fixture_state)
        if touched:
            self._fixture_state = fixture_state
            kind_reasons.append(("debris", "a fixture changed", "\n".join(touched[:20])))
        if not kind_reasons:
            return Outcome(case, code, seconds, "ok0" if code == 0 else "ok2", [], last)
        return Outcome(case, code, seconds, kind_reasons[0][0], [r for _, r, _ in kind_reasons], last,
                       "\n".join(d for _, _, d in kind_reasons))


def _reset_globals() -> None:
    """Undo what a command may set process-wide (thread counts), so later cases and tests see the defaults."""
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))


def fuzz_command(session: Session, command: str, examples: int, *, timeout: float = 20.0,
                 derandomize: bool = True) -> list[Outcome]:
    """Run ``examples`` generated cases of one command; every outcome is returned (nothing raises, so
    Hypothesis never shrinks: a failing argv is reported as generated)."""
    from hypothesis import HealthCheck, Phase, given, settings

    outcomes: list[Outcome] = []
    seen: set[tuple[str, ...]] = set()

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(cases(COMMANDS[command]))
    def prop(case: Case) -> None:
        if case.argv in seen:
            return
        seen.add(case.argv)
        outcomes.append(session.run(case, timeout))

    prop()
    return outcomes


def distinct_failures(outcomes: Iterable[Outcome]) -> dict[tuple[str, str], Outcome]:
    """The first outcome of each (command, reason)."""
    found: dict[tuple[str, str], Outcome] = {}
    for o in outcomes:
        if o.failed:
            found.setdefault((o.case.command, o.reasons[0]), o)
    return found
