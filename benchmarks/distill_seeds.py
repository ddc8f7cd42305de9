"""Is knowledge distillation better than its no-KD control, or was one seed lucky? KD vs control over seeds.

For each seed, ``workbench distill RUN --student S --control --seed K`` trains the student with KD and the
same student without KD on the same budget (seed K fixes both the SynthGaze training samples and the
initial weights, so each seed is a paired replicate). The table gives, per seed, the teacher's, the KD
student's and the control's primary metric on the run's validation split (held-out subjects), then the
mean and standard deviation of both and of the paired difference (KD - control), how many seeds KD
wins, the one-sided sign-test p-value of that count and the one-sided paired t-test p-value. It also
checks the issue's target for the student: at most 10% of the teacher's MACs and an error at most 1.15x
the teacher's. The script reports; it does not gate.

    python benchmarks/distill_seeds.py runs/bench-teachers/gazenet --student tinyface --seeds 0 1 2 3 4
    python benchmarks/distill_seeds.py RUN --student tinyface --set optimizer=adam --set lr=0.002 --json

Each seed's runs are kept under ``--out``/seed<K>/ (student/, control/, summary.json); a seed whose
summary.json is already there is read, not retrained, so an interrupted benchmark continues.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.errors import WorkbenchError  # noqa: E402
from workbench.utils.stats import paired_comparison, sign_test_p  # noqa: E402,F401  (sign_test_p: tests)

# gazenet's cpu recipe is SGD at lr 0.02 for its MobileNetV2; the tiny face student trains better with Adam
# (as in benchmarks/compress.py). The other cpu recipes already use Adam and are kept.
DEFAULT_SETS = {"gazenet": ["optimizer=adam", "lr=0.002"]}


def run_seed(run: Path, out: Path, seed: int, args: argparse.Namespace, sets: dict[str, Any]) -> dict[str, Any]:
    from workbench.compress.distill import distill

    summary_file = out / "summary.json"
    if summary_file.is_file():
        done = json.loads(summary_file.read_text())
        want = {"student": args.student, "kd": args.kd.split(","), "alpha": args.alpha,
                **{k: v for k, v in sets.items() if k in done["budget"]}}
        have = {"student": done["student"]["name"], "kd": done["kd"]["kd"], "alpha": done["kd"]["alpha"],
                **{k: done["budget"][k] for k in want if k in done["budget"]}}
        if want != have:
            raise WorkbenchError(f"{summary_file} was made with {have}, not {want}: give another --out")
        return done
    return distill(run, out, student=args.student, preset=args.preset, kd=args.kd.split(","), alpha=args.alpha,
                   control=True, epochs=args.epochs, recipe_overrides=sets, seed=seed, force=True,
                   progress=not args.json)


def summarize(rows: list[dict[str, Any]], higher_is_better: bool) -> dict[str, Any]:
    """Means, spreads, paired differences and the sign test over the per-seed rows (KD against control)."""
    c = paired_comparison([r["student"] for r in rows], [r["control"] for r in rows], higher_is_better=higher_is_better)
    return {"seeds": c["n"], "student_mean": c["a_mean"], "student_std": c["a_std"], "control_mean": c["b_mean"],
            "control_std": c["b_std"], "difference_mean": c["difference_mean"], "difference_std": c["difference_std"],
            "difference_stderr": c["difference_stderr"], "kd_wins": c["a_wins"], "sign_test_p": c["sign_test_p"],
            "paired_t_p": c["paired_t_p"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the teacher's run folder")
    ap.add_argument("--student", required=True)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--kd", default="response,feature")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                    help="training option for student and control (default for gazenet runs: "
                         f"{' '.join(DEFAULT_SETS['gazenet'])}; otherwise the run's recipe)")
    ap.add_argument("--out", type=Path, default=None, help="default: runs/distill-seeds/<teacher run name>")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not (args.run / "config.json").is_file():
        print(f"error: {args.run} is not a run folder (no config.json)", file=sys.stderr)
        return 2
    from workbench.cli._common import parse_sets

    teacher = json.loads((args.run / "config.json").read_text()).get("teacher")
    try:
        sets = parse_sets(args.set if args.set is not None else DEFAULT_SETS.get(teacher, []), "--set")
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "runs" / "distill-seeds" / args.run.name
    rows, meta = [], {}
    for seed in args.seeds:
        try:
            s = run_seed(args.run, out / f"seed{seed}", seed, args, sets)
        except WorkbenchError as exc:
            print(f"error: seed {seed}: {exc}", file=sys.stderr)
            return 2
        pm = s["primary_metric"]
        meta = {"primary_metric": pm, "higher_is_better": s["higher_is_better"], "student": s["student"]["name"],
                "macs_ratio": s["student"]["macs_ratio"], "budget": s["budget"]}
        rows.append({"seed": seed, "teacher": s["teacher"][pm], "student": s["kd_vs_control"]["student"],
                     "control": s["kd_vs_control"]["control"]})
        print(f"seed {seed}: teacher {rows[-1]['teacher']:.3f}, KD {rows[-1]['student']:.3f}, "
              f"control {rows[-1]['control']:.3f}", file=sys.stderr, flush=True)
    stats = summarize(rows, meta["higher_is_better"])
    teacher_mean = sum(r["teacher"] for r in rows) / len(rows)
    ratio = stats["student_mean"] / teacher_mean if teacher_mean else float("nan")
    targets = {"macs <= 0.10 x teacher": meta["macs_ratio"] is not None and meta["macs_ratio"] <= 0.10,
               "error <= 1.15 x teacher (mean over seeds)": (not meta["higher_is_better"]) and ratio <= 1.15,
               "better than the control (mean over seeds)":
                   stats["difference_mean"] > 0 if meta["higher_is_better"] else stats["difference_mean"] < 0}
    result = {"run": str(args.run), **meta, "rows": rows, "summary": stats, "student_vs_teacher": ratio,
              "targets": targets, "out": str(out)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pm = meta["primary_metric"]
    print(f"\n{meta['student']} from {args.run} ({pm}, validation split; MACs {meta['macs_ratio']:.1%} of the "
          f"teacher's; budget {meta['budget']['epochs']} epochs x {meta['budget']['n_train']} samples)\n")
    print("| seed | teacher | KD student | control | KD - control |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['teacher']:.3f} | {r['student']:.3f} | {r['control']:.3f} | "
              f"{r['student'] - r['control']:+.3f} |")
    print(f"| mean +- sd | {teacher_mean:.3f} | {stats['student_mean']:.3f} +- {stats['student_std']:.3f} | "
          f"{stats['control_mean']:.3f} +- {stats['control_std']:.3f} | "
          f"{stats['difference_mean']:+.3f} +- {stats['difference_std']:.3f} |")
    t_p = "n/a" if stats["paired_t_p"] is None else f"{stats['paired_t_p']:.3f}"
    print(f"\nKD better on {stats['kd_wins']} of {stats['seeds']} seeds (one-sided sign test p = "
          f"{stats['sign_test_p']:.3f}, paired t-test p = {t_p}); KD student / teacher = {ratio:.3f}")
    for name, ok in targets.items():
        print(f"  {name}: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
