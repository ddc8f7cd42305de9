"""Train each teacher's `cpu` preset on SynthGaze (held-out subjects for validation) and print a table:
teacher, params, minutes, metric, the constant predictor's metric (training mean), and the target.

Targets (issue "teachers"): each within 10 minutes on a 2-core machine; angle and PoG errors at most 30%
of the constant predictor's; Looking-At-Me AP at least 0.90. PoG from the whole camera frame (`plane_pog`,
EVG) has its own (issue 17): within 30 minutes, at most 0.6x the constant predictor, and its rows print the
reference predictors of benchmarks/pog_references.py (head only, face crop) on the same validation frames.
The script reports, it does not gate: it exits 0 whether or not a target is met.

    python benchmarks/train_teachers.py                      # all six teachers
    python benchmarks/train_teachers.py --teachers gazenet   # one
    python benchmarks/train_teachers.py --json               # machine-readable
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teachers import list_teachers  # noqa: E402
from workbench.train.engine import TrainRequest, fit  # noqa: E402

TEACHERS = list_teachers()  # every registered teacher: a new one is benchmarked without editing this file
TIME_LIMIT_MIN = 10.0
# Tasks with their own targets: task -> (minutes, error limit as a fraction of the constant predictor's).
TASK_TARGETS = {"plane_pog": (30.0, 0.6)}


def time_limit(task: str) -> float:
    return TASK_TARGETS.get(task, (TIME_LIMIT_MIN, 0.3))[0]


def target(summary: dict) -> tuple[str, bool]:
    """The issue's target for this teacher's primary metric, and whether it is met."""
    metric, value = summary["primary_metric"], summary["final"][summary["primary_metric"]]
    if metric == "ap":
        return "AP >= 0.90", value >= 0.90
    share = TASK_TARGETS.get(summary["task"], (TIME_LIMIT_MIN, 0.3))[1]
    limit = share * summary["constant"][metric]
    return f"<= {share:g} x constant = {limit:.3g}", value <= limit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teachers", nargs="+", default=TEACHERS, choices=TEACHERS)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-teachers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-references", action="store_true",
                    help="skip the reference predictors of plane_pog teachers (head only, face crop CNN)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe option for every teacher (e.g. epochs=2 for a smoke run)")
    args = ap.parse_args()
    overrides = {}
    for item in args.set:
        k, v = item.split("=", 1)
        overrides[k] = json.loads(v)

    rows = []
    for name in args.teachers:
        t0 = time.time()
        summary = fit(TrainRequest(teacher=name, preset="cpu", seed=args.seed, out=args.out / name, force=True,
                                   recipe_overrides=overrides, progress=not args.json))
        minutes = (time.time() - t0) / 60
        summary["task"] = json.loads((Path(summary["run"]) / "config.json").read_text())["task"]
        goal, met = target(summary)
        metric = summary["primary_metric"]
        rows.append({
            "teacher": name, "params": summary["params"], "minutes": round(minutes, 2), "metric": metric,
            "value": summary["final"][metric], "constant": summary["constant"][metric], "target": goal,
            "target_met": bool(met), "within_time": minutes <= time_limit(summary["task"]),
            "time_limit_min": time_limit(summary["task"]), "epochs": summary["epochs_run"],
            "all_metrics": summary["final"], "run": summary["run"],
        })
        if summary["task"] == "plane_pog" and not args.no_references:
            from pog_references import print_table, references

            rows[-1]["references"] = references(summary["run"])
            if not args.json:
                print_table(rows[-1]["references"])
        if not args.json:
            r = rows[-1]
            print(f"{name}: {metric} {r['value']:.4g} (constant {r['constant']:.4g}) in {minutes:.1f} min -> "
                  f"{'meets' if met else 'MISSES'} {goal}", flush=True)

    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'teacher':10s} {'params':>10s} {'minutes':>8s} {'metric':>14s} {'value':>9s} {'constant':>9s}  target"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        flag = "met" if r["target_met"] else "MISSED"
        slow = "" if r["within_time"] else f" (over {r['time_limit_min']:.0f} min)"
        print(f"{r['teacher']:10s} {r['params']:>10,d} {r['minutes']:>8.1f} {r['metric']:>14s} {r['value']:>9.4g} "
              f"{r['constant']:>9.4g}  {r['target']}: {flag}{slow}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
