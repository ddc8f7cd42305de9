"""Issue 19, fuzzed: every command, fed generated wrong values, ends in exit code 0 or 2 with no traceback,
writes nothing outside its --out, and leaves nothing at --out when it exits 2.

A bounded, derandomized run (the same cases every time); benchmarks/fuzz_cli.py runs many more. A failure
found and not yet fixed is listed in KNOWN_FAILURES (tests/cli/fuzz_cli.py) with the argv that shows it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli.fuzz_cli import COMMANDS, REPO, Case, Session, fuzz_command
from cli.fuzz_found import FIXED

EXAMPLES = 6  # per command: about 40 s for the file on two cores, fixtures included
TIMEOUT = 10.0  # seconds per case; a case stopped by it is counted, not failed


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Session(tmp_path_factory.mktemp("fuzz"))
    torch.set_num_threads(threads)


def _report(outcomes) -> str:
    return "\n".join(f"{o.case.show()}\n  exit {o.exit_code}; {'; '.join(o.reasons)}\n  {o.details[:600]}"
                     for o in outcomes)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_generated_values_end_in_exit_0_or_2_and_leave_nothing_behind(session, command):
    outcomes = fuzz_command(session, command, EXAMPLES, timeout=TIMEOUT)
    assert outcomes, "no case was generated"
    new = [o for o in outcomes if o.failed and not o.known]
    assert not new, "new failures (fix them, or list them in KNOWN_FAILURES):\n" + _report(new)


def test_the_checker_sees_a_traceback_and_debris(session, monkeypatch):
    """The property can fail: a case that must fail it does (guards against a checker that passes everything)."""
    import workbench.train.evaluate

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(workbench.train.evaluate, "evaluate_run", bug)
    bad = session.run(Case("eval", ("eval", "@run", "--device", "cpu"), None))
    assert bad.kind == "traceback" and bad.reasons[0].startswith("ZeroDivisionError"), bad
    monkeypatch.undo()
    ok = session.run(Case("data synth", ("data", "synth", "--out", "out", "--n", "2", "--subjects", "1"), "out"))
    assert ok.kind == "ok0", ok
    stray = session.run(Case("data synth", ("data", "synth", "--out", "out", "--n", "2", "--subjects", "1"), "elsewhere"))
    assert stray.kind == "debris" and "files outside --out: out/" in stray.reasons, stray


@pytest.mark.parametrize("key", sorted(FIXED))
def test_the_failures_found_first_stay_fixed(session, key):
    """Each distinct failure the harness found first (a traceback, a wrong exit code or debris), rerun."""
    import shlex

    argv = tuple(shlex.split(FIXED[key]))
    command, out_flag = key[0], COMMANDS[key[0]].out_flag
    outs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == out_flag]
    outcome = session.run(Case(command, argv, outs[-1] if outs else None), timeout=TIMEOUT)
    assert not outcome.failed, _report([outcome])


@pytest.mark.parametrize("argv", [
    ["eval", "@missing"],
    ["train", "gazenet", "--epochs", "0", "--out", "out"],
    ["data", "inspect", "@png"],
])
def test_the_console_entry_point_gives_one_line_and_exit_2(session, argv, tmp_path):
    """Through a real process (`python -m workbench.cli`, which runs workbench.cli:main), not CliRunner."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "workbench.cli", *(session.resolve(a) for a in argv)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: "), res.stderr
    assert list(tmp_path.iterdir()) == []
