"""Compress each teacher's `cpu` run three ways and print one table: prune to half the MACs, distill into a
student, quantize to int8 (onnxruntime).

Rows per teacher: the teacher, the teacher pruned to <= 0.5x MACs, the distilled student, each in fp32 and
int8. Columns: params, MACs (workbench.profile.quick.count_macs, batch 1), latency (onnxruntime, batch 1, one
thread by default: the wall-clock median and the median CPU time of the calling thread, which on a loaded
machine leaves out the time other processes held the core; all models of one teacher are timed in
alternation in one loop, so a load spike hits them alike) and the primary metric on the run's validation split (held-out subjects),
computed from onnxruntime's outputs. The script reports; it does not gate.

    python benchmarks/compress.py                                   # all six teachers, the runs' budgets
    python benchmarks/compress.py --teachers gazenet --epochs 3     # one teacher, a shorter distillation
    python benchmarks/compress.py --skip prune --json               # without the pruning rows

Budgets: distillation trains on the teacher run's data and recipe (``--epochs``, ``--n-train`` shorten
it); pruning fine-tunes ``--finetune-epochs`` per step on ``--finetune-samples``. Set OMP_NUM_THREADS=1 on
a shared machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from teachers import list_teachers
from workbench.errors import WorkbenchError

TEACHERS = list_teachers()  # every registered teacher: a new one is benchmarked without editing this file
RUNS = {t: f"runs/bench-teachers/{t}" for t in TEACHERS}  # what benchmarks/train_teachers.py writes
STUDENT_OF_TASK = {"face_angles": "tinyface", "plane_pog": "tinyevg", "eyes_pog": "tinytracker",
                   "look_at_me": "tinylstm", "face_eye_lola": "tinylola"}
# gazenet's cpu recipe is SGD at lr 0.02 for its MobileNetV2; the tiny student trains better with Adam
# (5.55 deg without KD in the teacher's 10 epochs). The other cpu recipes already use Adam.
STUDENT_RECIPE = {"gazenet": {"optimizer": "adam", "lr": 0.002}}


def _model_facts(run: Path) -> dict[str, Any]:
    from workbench.compress.distill import sample_inputs
    from workbench.profile.quick import count_macs
    from workbench.train.engine import load_run_model

    model, config, task = load_run_model(run)
    inputs = tuple(x[:1] for x in sample_inputs(task, config))
    return {"params": sum(p.numel() for p in model.parameters()), "macs": count_macs(model, inputs)}


def _stage(name: str, fn, errors: dict[str, str]) -> Any:
    """Run one stage; a failure becomes a note in the table instead of ending the benchmark."""
    try:
        return fn()
    except (WorkbenchError, ImportError, TypeError, RuntimeError, ValueError) as exc:
        errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return None


def bench_teacher(name: str, run: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from workbench.compress.distill import distill
    from workbench.compress.quantize import latency, quantize
    from workbench.train.engine import load_run_model

    _, config, task = load_run_model(run)
    errors: dict[str, str] = {}
    runs: dict[str, Path] = {"teacher": run}
    seconds: dict[str, float] = {}
    if "prune" not in args.skip:
        t0 = time.time()

        def do_prune():
            from workbench.compress.prune import prune

            return prune(run, out / "pruned", target_macs=0.5, steps=args.prune_steps,
                         finetune_epochs=args.finetune_epochs, finetune_samples=args.finetune_samples, force=True,
                         progress=not args.json)

        if _stage("pruned", do_prune, errors) is not None:
            runs["pruned"] = out / "pruned"
        seconds["prune"] = round(time.time() - t0, 1)
    if "distill" not in args.skip:
        t0 = time.time()
        student = STUDENT_OF_TASK[task.name]
        recipe = {**STUDENT_RECIPE.get(name, {}), **({"n_train": args.n_train} if args.n_train else {})}
        done = _stage("student", lambda: distill(run, out / "distill", student=student, kd=args.kd.split(","),
                                                  alpha=args.alpha, epochs=args.epochs, recipe_overrides=recipe,
                                                  force=True, progress=not args.json), errors)
        if done is not None:
            runs["student"] = out / "distill" / "student"
        seconds["distill"] = round(time.time() - t0, 1)
    rows: dict[str, dict[str, Any]] = {}
    onnx: dict[str, Path] = {}
    for stage, folder in runs.items():
        facts = _model_facts(folder)
        if "quantize" in args.skip:
            rows[stage] = {**facts, "metric_fp32": None, "metric_int8": None}
            continue
        q = _stage(f"{stage} int8", lambda f=folder, s=stage: quantize(
            f, out / f"{s}-int8", n_calib=args.n_calib, threads=args.threads, repeats=100, force=True,
            progress=not args.json), errors)
        if q is None:
            continue
        pm = q["primary_metric"]
        rows[stage] = {**facts, "metric_fp32": q["fp32"][pm], "metric_int8": q["int8"][pm],
                       "int8_candidate": q["int8"]["candidate"]}
        onnx[f"{stage}"] = Path(q["fp32"]["path"])
        onnx[f"{stage} int8"] = Path(q["int8"]["path"])
    if onnx:
        import onnx as onnx_lib

        from workbench.compress.distill import validation_data
        from workbench.compress.quantize import onnx_feeds

        val = validation_data(task, config)
        feeds = {}
        for label, path in onnx.items():
            names = [i.name for i in onnx_lib.load(str(path)).graph.input]
            feeds[label] = {k: v[:1] for k, v in onnx_feeds(task, val.subset(torch.arange(1)), names, 1)[0][0].items()}
        # One interleaved loop per feed signature (a model may drop inputs it never reads).
        by_sig: dict[tuple, dict[str, Path]] = {}
        for label, path in onnx.items():
            by_sig.setdefault(tuple(sorted(feeds[label])), {})[label] = path
        lat: dict[str, dict[str, float]] = {}
        for paths in by_sig.values():
            lat.update(latency(paths, feeds[next(iter(paths))], threads=args.threads, repeats=args.repeats))
        for stage, row in rows.items():
            for key, label in (("fp32", stage), ("int8", f"{stage} int8")):
                row[f"latency_{key}_ms"] = lat.get(label, {}).get("median_ms")
                row[f"cpu_{key}_ms"] = lat.get(label, {}).get("cpu_median_ms")
    return {"teacher": name, "run": str(run), "task": task.name, "primary_metric": task.primary_metric,
            "higher_is_better": task.higher_is_better, "rows": rows, "errors": errors, "seconds": seconds}


def _fmt(v: Any, kind: str = "g") -> str:
    if v is None:
        return "n/a"
    if kind == "int":
        return f"{v:,}"
    if kind == "macs":
        return f"{v / 1e6:.1f} M"
    if kind == "ms":
        return f"{v:.3f}"
    return f"{v:.4g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teachers", nargs="+", default=TEACHERS, choices=TEACHERS)
    ap.add_argument("--runs", nargs="*", default=[], metavar="TEACHER=RUN", help="run folders other than the defaults")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-compress")
    ap.add_argument("--skip", nargs="*", default=[], choices=["prune", "distill", "quantize"])
    ap.add_argument("--epochs", type=int, default=None, help="distillation epochs (default: the run's)")
    ap.add_argument("--n-train", type=int, default=None, help="distillation training samples (default: the run's)")
    ap.add_argument("--kd", default="response,feature")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--prune-steps", type=int, default=2)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--finetune-samples", type=int, default=None)
    ap.add_argument("--n-calib", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for the latency")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = dict(RUNS)
    for item in args.runs:
        k, v = item.split("=", 1)
        runs[k] = v

    results = []
    for name in args.teachers:
        run = ROOT / runs[name] if not Path(runs[name]).is_absolute() else Path(runs[name])
        if not (run / "config.json").is_file():
            results.append({"teacher": name, "run": str(run), "rows": {}, "errors": {"teacher": "no run folder"}})
            continue
        results.append(bench_teacher(name, run, args.out / name, args))
        (args.out).mkdir(parents=True, exist_ok=True)
        (args.out / "benchmark.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"compression (onnxruntime batch 1, {args.threads} thread(s); metric on held-out subjects)")
    for col in ("model", "params", "MACs", "latency ms", "CPU ms", "metric"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        pm = r.get("primary_metric", "metric")
        for stage, row in r["rows"].items():
            label = f"{r['teacher']} {stage}"
            table.add_row(label, _fmt(row["params"], "int"), _fmt(row["macs"], "macs"),
                          _fmt(row.get("latency_fp32_ms"), "ms"), _fmt(row.get("cpu_fp32_ms"), "ms"),
                          f"{pm} {_fmt(row['metric_fp32'])}")
            if row.get("metric_int8") is not None:
                table.add_row(f"{label} int8", "", "", _fmt(row.get("latency_int8_ms"), "ms"),
                              _fmt(row.get("cpu_int8_ms"), "ms"), f"{pm} {_fmt(row['metric_int8'])}")
        for stage, err in r["errors"].items():
            table.add_row(f"{r['teacher']} {stage}", "", "", "", "", f"failed: {err}")
    Console(width=max(110, shutil.get_terminal_size().columns)).print(table)
    print(f"details: {args.out / 'benchmark.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
