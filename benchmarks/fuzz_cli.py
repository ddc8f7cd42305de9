"""Fuzz the `workbench` CLI with Hypothesis (issue 19): N generated cases per command, run through the real
Typer app; per command, how many ran, exited 0, exited 2, failed (traceback / other exit code / debris) or
timed out, and the first failing argv's with the last line of output. Exit code 1 when any case failed.

    python benchmarks/fuzz_cli.py --examples 50 [--commands train,eval] [--json] [--timeout 20] [--keep DIR]

The property and the generators live in tests/cli/fuzz_cli.py (shared with tests/cli/test_fuzz_cli.py);
argv's name fixtures with placeholders (@run: a tiny trained gazenet run, @png: a PNG, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from cli.fuzz_cli import COMMANDS, Session, distinct_failures, fuzz_command  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=50, help="Generated cases per command.")
    ap.add_argument("--commands", default=None, help="Comma-separated commands (e.g. 'train,analyze saliency'); "
                    "default all: " + ", ".join(COMMANDS))
    ap.add_argument("--timeout", type=float, default=20.0, help="Seconds per case before it is stopped (a timeout).")
    ap.add_argument("--show", type=int, default=5, help="Failing argv's shown per command.")
    ap.add_argument("--random", action="store_true", help="Random examples (default: derandomized, reproducible).")
    ap.add_argument("--keep", type=Path, default=None, help="Build the fixtures here and keep them.")
    ap.add_argument("--json", action="store_true", help="Print the results as JSON.")
    ap.add_argument("--case", action="append", default=[], metavar="ARGV",
                    help="Run this one case instead (placeholders allowed), e.g. --case 'eval @run_cfglist'; "
                    "prints its outcome with the traceback. Repeatable.")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.commands.split(",")] if args.commands else list(COMMANDS)
    unknown = [c for c in names if c not in COMMANDS]
    if unknown:
        ap.error(f"unknown command(s) {unknown}; expected some of {', '.join(COMMANDS)}")

    import torch

    torch.set_num_threads(1)
    root = args.keep or Path(tempfile.mkdtemp(prefix="wb-fuzz-"))
    t0 = time.perf_counter()
    # Native code (torch.onnx on an error) can write to file descriptor 1 behind CliRunner: keep stdout for
    # this script's own output by pointing fd 1 at stderr while the cases run.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(real_stdout, "w", closefd=False)
    try:
        session = Session(root)
        setup_s = time.perf_counter() - t0
        if not args.json:
            print(f"fixtures built in {setup_s:.1f} s under {root}", file=sys.stderr)
        if args.case:
            return _cases(session, args.case, args.timeout)
        results = {}
        for name in names:
            t = time.perf_counter()
            outcomes = fuzz_command(session, name, args.examples, timeout=args.timeout, derandomize=not args.random)
            results[name] = {"outcomes": outcomes, "seconds": time.perf_counter() - t}
            if not args.json:
                _print_command(name, results[name], args.show)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    all_outcomes = [o for r in results.values() for o in r["outcomes"]]
    distinct = distinct_failures(all_outcomes)
    failed = sum(o.failed for o in all_outcomes)
    if args.json:
        print(json.dumps({
            "examples": args.examples, "setup_seconds": round(setup_s, 1),
            "seconds": round(time.perf_counter() - t0, 1),
            "commands": {n: {**_counts(r["outcomes"]), "seconds": round(r["seconds"], 1),
                             "failures": [o.to_dict() for o in r["outcomes"] if o.failed][:args.show]}
                         for n, r in results.items()},
            "distinct_failures": [dict(o.to_dict(), key=list(k)) for k, o in distinct.items()],
        }, indent=2))
    else:
        print(f"\n{len(all_outcomes)} cases in {time.perf_counter() - t0:.0f} s; {failed} failed "
              f"({sum(o.known for o in all_outcomes)} of them known); {len(distinct)} distinct failures:")
        for (cmd, reason), o in distinct.items():
            print(f"  [{cmd}] {reason}{' (known)' if o.known else ''}\n      {o.case.show()}\n      exit {o.exit_code}: "
                  f"{o.last_line[:160]}")
    return 1 if failed else 0


def _cases(session, cases: list[str], timeout: float) -> int:
    """Run cases given on the command line, print each outcome in full."""
    import shlex

    from cli.fuzz_cli import Case

    failed = 0
    for text in cases:
        argv = shlex.split(text.removeprefix("workbench "))
        words = [w for w in argv[:2] if not w.startswith("-") and not w.startswith("@")]
        command = next((c for c in sorted(COMMANDS, key=len, reverse=True) if tuple(words[:len(c.split())]) == tuple(c.split())), argv[0])
        out_flag = COMMANDS[command].out_flag if command in COMMANDS else "--out"
        outs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == out_flag]  # the last one given wins
        out = outs[-1] if outs else None
        o = session.run(Case(command, tuple(argv), out), timeout)
        failed += o.failed
        print(f"{o.case.show()}\n  {o.kind}, exit {o.exit_code}, {o.seconds:.1f} s; {'; '.join(o.reasons)}\n"
              f"  last line: {o.last_line}\n{o.details}\n")
    return 1 if failed else 0


def _counts(outcomes) -> dict:
    kinds = ("ok0", "ok2", "traceback", "exit", "json", "debris", "timeout")
    counts = {"ran": len(outcomes), **{k: sum(o.kind == k for o in outcomes) for k in kinds}}
    counts["known"] = sum(o.known for o in outcomes)
    return counts


def _print_command(name: str, result: dict, show: int) -> None:
    c = _counts(result["outcomes"])
    print(f"{name:22s} ran {c['ran']:4d}  exit0 {c['ok0']:4d}  exit2 {c['ok2']:4d}  traceback {c['traceback']:3d}  "
          f"other-exit {c['exit']:3d}  bad-json {c['json']:3d}  debris {c['debris']:3d}  timeout {c['timeout']:3d}  ({result['seconds']:.0f} s)",
          flush=True)
    for o in [o for o in result["outcomes"] if o.failed or o.kind == "timeout"][:show]:
        print(f"    {o.kind}: {'; '.join(o.reasons)}{' (known)' if o.known else ''}\n      {o.case.show()}\n"
              f"      exit {o.exit_code}: {o.last_line[:160]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
