"""Does analysis make compression better? Each link of issue 18 against its ablation, over seeds, paired.

For each teacher's trained `cpu` run (what ``benchmarks/train_teachers.py`` writes) and each seed, the script
trains every arm of each link on the same compute budget (same steps, epochs and samples; the seed fixes
the training samples drawn and the initial weights, so seed k of two arms is a paired replicate):

- ``prune``: structural pruning to ``--target-macs`` of the MACs, widths rounded as ``workbench prune``
  does, ``--steps`` prune-then-fine-tune rounds of ``--finetune-epochs`` x ``--finetune-samples``. Arms:
  ``magnitude`` and ``taylor`` (the baselines), ``rank`` (feature-map rank importance, HRank-like) and
  ``erank`` (per-layer keep ratios from each layer's entropy effective rank, magnitude choosing within a
  layer), ``erank-pr`` (the same from the participation ratio) and ``erank-taylor`` (entropy layer sizes,
  Taylor choosing within a layer).
- ``kd``: the task's default student (its default preset) trained ``--epochs`` x ``--n-train`` from the
  teacher. Arms: ``control`` (no teacher), ``response`` (response KD) and ``response+saliency`` (response KD
  plus the student's input-gradient maps matched to the teacher's: its ablation is the response arm);
  ``--kd-arms`` adds ``saliency`` alone. A saliency step costs several times a response step (a double
  backward), so each arm's training seconds are in the table.
- ``auto``: the auto-sized student (its hint width covers the teacher's participation ratio) against the default
  preset, both with response KD (the default-preset arm is the ``kd`` link's ``response`` arm: same run).

Each link's table gives each arm's primary metric per seed, mean and sample standard deviation, and each arm
against the link's reference arm (magnitude; control; default preset): the paired difference, how many seeds
it wins, the one-sided sign-test p and the one-sided paired t-test p, plus MACs (pruning: every arm must
land at the same MACs) and training seconds. The script reports; it does not gate.

    python benchmarks/train_teachers.py --teachers gazenet itracker        # the runs, first
    OMP_NUM_THREADS=1 python benchmarks/analysis_links.py --seeds 0 1 2     # gazenet and itracker, all links
    python benchmarks/analysis_links.py --teachers itracker --links prune --seeds 0 1 2 --json

Every arm's run folder is kept under ``--out``/<teacher>/<link>/<arm>/seed<K>/; an arm whose summary is
already there (made with the same options) is read, not retrained, so an interrupted benchmark continues.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.errors import WorkbenchError  # noqa: E402
from workbench.utils.stats import paired_comparison  # noqa: E402

PRUNE_ARMS = {"magnitude": {"importance": "magnitude"}, "taylor": {"importance": "taylor"},
              "rank": {"importance": "rank"}, "erank": {"importance": "magnitude", "scope": "erank", "erank_measure": "entropy"},
              "erank-pr": {"importance": "magnitude", "scope": "erank", "erank_measure": "pr"},
              "erank-taylor": {"importance": "taylor", "scope": "erank", "erank_measure": "entropy"}}
KD_ARMS = {"control": (), "response": ("response",), "saliency": ("saliency",),
           "response+saliency": ("response", "saliency")}
AUTO_ARMS = ("default", "auto")
REFERENCE = {"prune": "magnitude", "kd": "control", "auto": "default"}
# gazenet's cpu recipe is SGD at lr 0.02 for its MobileNetV2; its small students train better with Adam (as in
# benchmarks/distill_seeds.py and compress.py). The other cpu recipes already use Adam and are kept.
STUDENT_SETS = {"gazenet": {"optimizer": "adam", "lr": 0.002}}


def _done(folder: Path, name: str, options: dict[str, Any]) -> dict[str, Any] | None:
    """The summary an earlier call left in ``folder`` if it was made with ``options``; else None."""
    path, opts = folder / name, folder / "bench_options.json"
    if path.is_file() and opts.is_file():
        if json.loads(opts.read_text()) != options:
            raise WorkbenchError(f"{folder} was made with other options ({opts}): give another --out")
        return json.loads(path.read_text())
    return None


def _mark(folder: Path, options: dict[str, Any]) -> None:
    (folder / "bench_options.json").write_text(json.dumps(options, indent=1, sort_keys=True))


def prune_arm(run: Path, folder: Path, arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from workbench.compress.prune import prune

    options = {"arm": arm, "seed": seed, "target_macs": args.target_macs, "steps": args.steps,
               "finetune_epochs": args.finetune_epochs, "finetune_samples": args.finetune_samples,
               **PRUNE_ARMS[arm]}
    res = _done(folder, "metrics.json", options)
    if res is None:
        res = prune(run, folder, target_macs=args.target_macs, steps=args.steps, finetune_epochs=args.finetune_epochs,
                    finetune_samples=args.finetune_samples, seed=seed, force=True, progress=False, device="cpu",
                    **PRUNE_ARMS[arm])
        _mark(folder, options)
    return {"metric": res["best"], "teacher": res["teacher_metric"], "macs_ratio": res["macs"]["ratio"],
            "seconds": res["seconds"], "primary_metric": res["primary_metric"],
            "higher_is_better": res["higher_is_better"]}


def student_arm(run: Path, folder: Path, kd: tuple[str, ...], preset: str | None, seed: int,
                args: argparse.Namespace, teacher: str, *, control: bool = False, take: str = "student") -> dict[str, Any]:
    """The task's default student distilled with ``kd`` into ``folder`` (with its no-KD control when
    ``control``); ``take`` says which of the two this arm is."""
    from workbench.compress.distill import distill
    from workbench.pipeline.stages import resolve_student

    student = resolve_student(run, "auto")
    sets = {"n_train": args.n_train, **STUDENT_SETS.get(teacher, {})}
    options = {"student": student, "preset": preset, "kd": list(kd), "seed": seed, "epochs": args.epochs,
               "alpha": args.alpha, "control": control, **sets}
    res = _done(folder, "summary.json", options)
    if res is None:
        res = distill(run, folder, student=student, preset=preset, kd=kd, alpha=args.alpha, control=control,
                      epochs=args.epochs, recipe_overrides=sets, seed=seed, force=True, progress=False, device="cpu")
        _mark(folder, options)
    s = res[take]
    return {"metric": s["best"], "teacher": res["teacher"][res["primary_metric"]],
            "macs_ratio": res["student"]["macs_ratio"], "seconds": s["train_seconds"],
            "primary_metric": res["primary_metric"], "higher_is_better": res["higher_is_better"],
            "student": f"{student} ({res['student']['preset']})", "auto_size": res.get("auto_size")}


def run_link(link: str, teacher: str, run: Path, out: Path, seeds: list[int], args: argparse.Namespace) -> dict[str, Any]:
    arms: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        if link == "prune":
            jobs = [(arm, lambda arm=arm: prune_arm(run, out / "prune" / arm / f"seed{seed}", arm, seed, args))
                    for arm in args.prune_arms]
        elif link == "kd":  # the response arm's run also trains the control (the same student, no teacher)
            base = out / "kd" / "response" / f"seed{seed}"
            jobs = [(arm, lambda arm=arm: student_arm(run, base, ("response",), None, seed, args, teacher, control=True,
                                                      take="control" if arm == "control" else "student"))
                    for arm in ("control", "response") if arm in args.kd_arms]
            jobs += [(arm, lambda arm=arm: student_arm(run, out / "kd" / arm / f"seed{seed}", KD_ARMS[arm], None,
                                                       seed, args, teacher))
                     for arm in args.kd_arms if arm not in ("control", "response")]
        else:  # auto: the default preset is the kd link's response arm, the same run
            base = out / "kd" / "response" / f"seed{seed}"
            jobs = [("default", lambda: student_arm(run, base, ("response",), None, seed, args, teacher, control=True)),
                    ("auto", lambda: student_arm(run, out / "auto" / "auto" / f"seed{seed}", ("response",), "auto",
                                                 seed, args, teacher))]
            jobs = [j for j in jobs if j[0] in args.auto_arms]
        for arm, job in jobs:
            t0 = time.time()
            row = job()
            arms.setdefault(arm, []).append({"seed": seed, **row})
            print(f"{teacher} {link} {arm} seed {seed}: {row['primary_metric']} {row['metric']:.4g} "
                  f"(teacher {row['teacher']:.4g}, MACs {row['macs_ratio']:.3f}x; {time.time() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    first = next(iter(arms.values()))[0]
    hib = first["higher_is_better"]
    ref = REFERENCE[link]
    table = {}
    for arm, rows in arms.items():
        values = [r["metric"] for r in rows]
        entry = {"values": values, "macs_ratio": [r["macs_ratio"] for r in rows],
                 "seconds": [r["seconds"] for r in rows]}
        if "student" in rows[0]:
            entry["student"] = rows[0]["student"]
            entry["auto_size"] = rows[0].get("auto_size")
        if ref in arms:  # (a partial call, e.g. --kd-arms response+saliency, has no reference arm)
            entry["vs_reference"] = paired_comparison(values, [r["metric"] for r in arms[ref]], higher_is_better=hib)
        if link == "prune" and arm not in ("taylor",) and "taylor" in arms:
            entry["vs_taylor"] = paired_comparison(values, [r["metric"] for r in arms["taylor"]], higher_is_better=hib)
        if link == "kd" and arm != "response" and "response" in arms:
            entry["vs_response"] = paired_comparison(values, [r["metric"] for r in arms["response"]],
                                                     higher_is_better=hib)
        table[arm] = entry
    return {"link": link, "teacher": teacher, "run": str(run), "primary_metric": first["primary_metric"],
            "higher_is_better": hib, "teacher_metric": first["teacher"], "reference": ref, "seeds": seeds,
            "arms": table}


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_link(res: dict[str, Any]) -> None:
    pm, ref = res["primary_metric"], res["reference"]
    print(f"\n{res['teacher']} · {res['link']} ({pm} on held-out subjects, teacher {res['teacher_metric']:.4g}; "
          f"seeds {' '.join(map(str, res['seeds']))}; reference arm: {ref})\n")
    print(f"| arm | per seed | mean +- sd | vs {ref}: diff mean +- sd | wins | sign p | t p | MACs x | train s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm, e in res["arms"].items():
        own = arm == ref or "vs_reference" not in e  # the reference itself, or a call without it
        c = e.get("vs_reference") or paired_comparison(e["values"], e["values"], higher_is_better=res["higher_is_better"])
        label = arm + (f" [{e['student']}]" if e.get("student") else "")
        diff = "" if own else f"{c['difference_mean']:+.3f} +- {c['difference_std']:.3f}"
        print(f"| {label} | {' '.join(f'{v:.3f}' for v in e['values'])} | {c['a_mean']:.3f} +- {c['a_std']:.3f} | "
              f"{diff} | {'' if own else c['a_wins']} | {'' if own else _p(c['sign_test_p'])} | "
              f"{'' if own else _p(c['paired_t_p'])} | {max(e['macs_ratio']):.3f} | "
              f"{sum(e['seconds']) / len(e['seconds']):.0f} |")
    for arm, e in res["arms"].items():
        for key, other in (("vs_taylor", "taylor"), ("vs_response", "response")):
            if key in e:
                c = e[key]
                print(f"  {arm} vs {other}: {c['difference_mean']:+.3f} +- {c['difference_std']:.3f}, wins "
                      f"{c['a_wins']}/{c['n']}, sign p {_p(c['sign_test_p'])}, t p {_p(c['paired_t_p'])}")
        if e.get("auto_size"):
            a = e["auto_size"]
            print(f"  {arm}: {json.dumps(a)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teachers", nargs="+", default=["gazenet", "itracker"])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-teachers",
                    help="Folder of the trained teacher runs, one per teacher (benchmarks/train_teachers.py --out).")
    ap.add_argument("--links", nargs="+", default=["prune", "kd", "auto"], choices=["prune", "kd", "auto"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "analysis-links")
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--finetune-samples", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=4, help="student epochs (kd and auto links)")
    ap.add_argument("--n-train", type=int, default=4000, help="student training samples per epoch")
    ap.add_argument("--prune-arms", nargs="+", default=list(PRUNE_ARMS), choices=list(PRUNE_ARMS))
    ap.add_argument("--auto-arms", nargs="+", default=list(AUTO_ARMS), choices=list(AUTO_ARMS),
                    help="auto link arms (default is the kd link's response run)")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--kd-arms", nargs="+", default=["control", "response", "response+saliency"], choices=list(KD_ARMS),
                    help="kd link arms (control and response come from one distill call that trains both)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if len(set(args.seeds)) < 2:  # allowed (one seed of a split run), but it tests nothing
        print("warning: one seed gives no spread and no test; run the others too (arms resume from their "
              "folders)", file=sys.stderr)
    results = []
    for teacher in args.teachers:
        run = args.runs / teacher
        if not (run / "config.json").is_file():
            print(f"error: {run} is not a run folder (train it first: python benchmarks/train_teachers.py "
                  f"--teachers {teacher} --out {args.runs})", file=sys.stderr)
            return 2
        for link in args.links:
            try:
                res = run_link(link, teacher, run, args.out / teacher, args.seeds, args)
            except WorkbenchError as exc:
                print(f"error: {teacher} {link}: {exc}", file=sys.stderr)
                return 2
            results.append(res)
            if not args.json:
                print_link(res)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
