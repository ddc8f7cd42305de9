"""Does pruning pay off in milliseconds? Teacher vs pruned to <= 0.5x MACs, timed side by side (issue 20).

For each teacher's trained `cpu` run (what ``benchmarks/train_teachers.py`` writes) the script prunes to half
the MACs once per ``--round-to`` value (1 = any width, as before; 8 and 16 = widths in multiples), fine-tunes
each through the normal ``prune`` path, exports every model to ONNX and times them in onnxruntime, all models
of one teacher in alternation in one loop (so a load spike hits them alike), at batch 1 and batch 32, on
real validation inputs. Columns:

- MACs ratio (pruned / teacher, batch 1, ``workbench.profile.quick.count_macs``);
- batch-1 and batch-32 latency: the median CPU time of the calling thread per call (one intra-op thread:
  onnxruntime computes on the caller, so this leaves out the time other processes held the core) and the
  speed-up over the teacher in the same loop;
- "cut ratio": the latency cut over the MAC cut, (1 - t/t_teacher) / (1 - MACs/MACs_teacher); 1.0 means time
  falls as much as MACs do;
- the primary metric on the run's validation split (held-out subjects) and its ratio to the teacher's.

Targets (issue 20): gazenet pruned to <= 0.5x MACs at >= 1.6x faster at batch 1 and at batch 32, with its
error <= 1.05x the teacher's after fine-tuning. The script reports; it does not gate.

    python benchmarks/train_teachers.py --teachers gazenet itracker mc4      # the runs, first
    OMP_NUM_THREADS=1 python benchmarks/latency.py                           # gazenet, itracker, mc4
    python benchmarks/latency.py --teachers gazenet --round-to 1 8 --json
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from teachers import list_teachers  # noqa: E402
from workbench.profile.machine import machine, machine_text  # noqa: E402

DEFAULT_TEACHERS = [t for t in ("gazenet", "itracker", "mc4") if t in list_teachers()]


def _feed(run: Path, names: list[str], batch: int) -> dict[str, np.ndarray]:
    """``batch`` real validation inputs of the run (the first sample repeated when the split is smaller)."""
    from workbench.compress.distill import validation_data
    from workbench.compress.quantize import onnx_feeds
    from workbench.train.run_folder import read_run_config
    from workbench.tasks import get_task

    config = read_run_config(run / "config.json")
    task = get_task(config["task"])
    val = validation_data(task, config)
    idx = torch.arange(batch) % len(val)
    return onnx_feeds(task, val.subset(idx), names, batch)[0][0]


def bench_teacher(name: str, run: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import onnx as onnx_lib

    from workbench.compress.prune import prune
    from workbench.compress.quantize import latency
    from workbench.profile.export import export_run

    models: dict[str, dict[str, Any]] = {"teacher": {"run": str(run)}}
    seconds: dict[str, float] = {}
    variants = [(f"pruned, round-to {r}", f"round{r}", {"target_macs": args.target_macs, "round_to": r})
                for r in args.round_to]
    if args.target_latency is not None:  # the latency-targeted search, at the default rounding
        variants.append((f"pruned to {args.target_latency}x time", "latency",
                         {"target_latency": args.target_latency, "scope": args.latency_scope}))
    for label, folder, options in variants:
        t0 = time.time()
        done = out / name / folder / "metrics.json"
        if args.reuse and done.is_file():  # pruned by an earlier call with the same options: reuse it
            res = json.loads(done.read_text())
        else:
            res = prune(run, out / name / folder, steps=args.steps, finetune_epochs=args.finetune_epochs,
                        final_epochs=args.final_epochs, force=True, progress=not args.json, device="cpu", **options)
        seconds[label] = round(time.time() - t0, 1)
        pm = res["primary_metric"]
        models["teacher"].update(macs=res["macs"]["before"], params=res["params"]["before"],
                                 metric=res["teacher_metric"])
        models[label] = {"run": res["run"], "macs": res["macs"]["after"], "params": res["params"]["after"],
                         "metric": res["best"], "widths": sorted({w for v in res["widths"].values() for w in v.values()})}
    paths: dict[str, Path] = {}
    for label, m in models.items():
        path = out / name / f"{label.replace(', ', '-').replace(' ', '')}.onnx"
        export_run(m["run"], path)
        paths[label] = path
    names = [i.name for i in onnx_lib.load(str(paths["teacher"])).graph.input]
    feeds = {batch: _feed(run, names, batch) for batch in (1, 32)}  # the same inputs for timing and profiling
    for batch, repeats in ((1, args.repeats), (32, max(10, args.repeats // 10))):
        lat = latency(paths, feeds[batch], threads=args.threads, repeats=repeats)
        for label, m in models.items():
            m[f"b{batch}_ms"] = lat[label]["cpu_median_ms"] if args.threads == 1 else lat[label]["median_ms"]
            m[f"b{batch}_wall_ms"] = lat[label]["median_ms"]
    if args.per_op:  # where each model's time goes: kernels per layer kind, and the fixed cost around them
        from workbench.profile.ops import time_per_kind

        for batch in (1, 32):
            for label, m in models.items():
                m[f"b{batch}_ops"] = time_per_kind(paths[label], feeds[batch], runs=max(10, args.repeats // (4 if batch == 1 else 20)),
                                                   threads=args.threads)
    t = models["teacher"]
    for m in models.values():
        m["macs_ratio"] = m["macs"] / t["macs"]
        m["metric_ratio"] = m["metric"] / t["metric"] if t["metric"] else None
        for b in (1, 32):
            m[f"b{b}_speedup"] = t[f"b{b}_ms"] / m[f"b{b}_ms"]
            mac_cut = 1.0 - m["macs_ratio"]
            m[f"b{b}_cut_ratio"] = (1.0 - m[f"b{b}_ms"] / t[f"b{b}_ms"]) / mac_cut if mac_cut > 0 else None
    return {"teacher": name, "run": str(run), "primary_metric": pm, "models": models, "seconds": seconds}


def _print(result: dict[str, Any], threads: int) -> None:
    pm = result["primary_metric"]
    kind = "CPU ms" if threads == 1 else "wall ms"
    print(f"\n{result['teacher']} ({result['run']}); latency = onnxruntime, {threads} thread(s), median {kind} per call")
    head = (f"{'model':22s} {'MACs':>6s} {'b1 ' + kind:>11s} {'b1 x':>6s} {'b1 cut':>7s} {'b32 ' + kind:>12s} "
            f"{'b32 x':>6s} {'b32 cut':>8s} {pm:>14s} {'ratio':>6s}")
    print(head)
    print("-" * len(head))
    for label, m in result["models"].items():
        cut = {b: "" if m[f"b{b}_cut_ratio"] is None else f"{m[f'b{b}_cut_ratio']:.2f}" for b in (1, 32)}
        print(f"{label:22s} {m['macs_ratio']:6.3f} {m['b1_ms']:11.3f} {m['b1_speedup']:6.2f} {cut[1]:>7s} "
              f"{m['b32_ms']:12.2f} {m['b32_speedup']:6.2f} {cut[32]:>8s} {m['metric']:14.4g} "
              f"{m['metric_ratio']:6.3f}")
    for label, m in result["models"].items():
        if "widths" in m:
            print(f"  {label}: widths {m['widths']}")
    if "b1_ops" in result["models"]["teacher"]:
        _print_ops(result)


def _print_ops(result: dict[str, Any]) -> None:
    """Per model and batch: a call's time, its kernels, the rest (overhead), and the kernels per layer kind."""
    models = result["models"]
    kinds = sorted({k for m in models.values() for b in (1, 32) for k in m[f"b{b}_ops"]["kinds"]},
                   key=lambda k: -models["teacher"]["b1_ops"]["kinds"].get(k, 0.0))
    print(f"\n{result['teacher']}: where the time goes (onnxruntime profiler, us per call, one profiled session "
          f"each; overhead = call - its kernels)")
    for b in (1, 32):
        head = f"{'batch ' + str(b):22s} {'call':>8s} {'kernels':>8s} {'overhead':>8s} {'nodes':>5s}  " + "  ".join(
            f"{k[:18]:>18s}" for k in kinds)
        print(head)
        for label, m in models.items():
            o = m[f"b{b}_ops"]
            print(f"{label:22s} {o['run_us']:8.0f} {o['kernel_us']:8.0f} {o['overhead_us']:8.0f} {o['nodes']:5.0f}  "
                  + "  ".join(f"{o['kinds'].get(k, 0.0):18.0f}" for k in kinds))
        top = list(models["teacher"][f"b{b}_ops"]["node_us"])[:10]
        print(f"  the teacher's 10 slowest nodes at batch {b} (us; the same node in each model):")
        print(f"  {'node':56s} " + " ".join(f"{label[:14]:>14s}" for label in models))
        for node in top:
            print(f"  {node[-56:]:56s} " + " ".join(f"{m[f'b{b}_ops']['node_us'].get(node, 0.0):14.0f}"
                                                     for m in models.values()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teachers", nargs="+", default=DEFAULT_TEACHERS, choices=list_teachers())
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-teachers",
                    help="Folder of the trained teacher runs, one per teacher (benchmarks/train_teachers.py --out).")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-latency")
    ap.add_argument("--round-to", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--target-latency", type=float, default=None,
                    help="Also prune to this ratio of the teacher's onnxruntime time (prune --target-latency).")
    ap.add_argument("--latency-scope", choices=["local", "global"], default="local")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--final-epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=200, help="Timed calls per model at batch 1 (a tenth at batch 32).")
    ap.add_argument("--reuse", action="store_true",
                    help="Reuse a pruned run already under --out (its metrics.json) instead of pruning it again.")
    ap.add_argument("--per-op", action="store_true",
                    help="Also profile every model: kernel time per layer kind and the overhead around them.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    missing = [t for t in args.teachers if not (args.runs / t / "config.json").is_file()]
    if missing:
        print(f"no trained run for {', '.join(missing)} under {args.runs}; train them first: "
              f"python benchmarks/train_teachers.py --teachers {' '.join(missing)} --out {args.runs}", file=sys.stderr)
        return 2
    results = [bench_teacher(t, args.runs / t, args.out, args) for t in args.teachers]
    doc = {"machine": machine(), "threads": args.threads, "target_macs": args.target_macs, "steps": args.steps,
           "finetune_epochs": args.finetune_epochs, "results": results}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"machine: {machine_text(doc['machine'])}")
    for r in results:
        _print(r, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
