"""Where onnxruntime's int8 pays off on this CPU: single layers, then every teacher at both presets.

Part 1 times single layers (a conv + ReLU, or a Linear) in fp32 and statically quantized int8 (the same
quantizer settings as ``workbench quantize``: per-channel int8 weights, uint8 activations, QDQ and
QOperator, the faster kept) at batch 1 on one thread: dense 1x1 and 3x3 convs of several widths, a
depthwise conv, a ResNeXt-style grouped conv (4 channels per group), a stride-2 ConvTranspose (the EVG
decoder) and an FC layer. Part 2 exports every teacher at ``cpu`` and ``paper`` with random weights (latency
does not depend on the weight values), quantizes it the same way (image stems and grouped convs kept
in fp32 or not, as ``workbench quantize`` chooses) and times both.

It explains the int8 figures of ``workbench quantize``: the speed-up of a model is the MAC-weighted mix of
its layers' speed-ups plus a fixed cost per node, so narrow, depthwise and grouped convs (the cpu presets,
MobileNetV2, ResNeXt) gain little or lose, and wide dense convs gain most. The script reports; it does not
gate.

    python benchmarks/int8_kernels.py                      # both parts
    python benchmarks/int8_kernels.py --part layers --json
    python benchmarks/int8_kernels.py --part teachers --teachers gazenet,gazelstm --presets paper
    python benchmarks/int8_kernels.py --pair runs/q/mc4     # a `workbench quantize` output, time per layer kind
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from torch import nn

from teachers import list_teachers
from workbench.errors import WorkbenchError

TEACHERS = list_teachers()  # every registered teacher: a new one is benchmarked without editing this file

# (label, module factory, input shape without batch)
LAYERS: list[tuple[str, Any, tuple[int, ...]]] = [
    ("1x1 conv 16->96 @56", lambda: nn.Conv2d(16, 96, 1), (16, 56, 56)),
    ("1x1 conv 64->64 @28", lambda: nn.Conv2d(64, 64, 1), (64, 28, 28)),
    ("1x1 conv 256->256 @14", lambda: nn.Conv2d(256, 256, 1), (256, 14, 14)),
    ("3x3 conv 16->16 @32", lambda: nn.Conv2d(16, 16, 3, padding=1), (16, 32, 32)),
    ("3x3 conv 64->64 @56", lambda: nn.Conv2d(64, 64, 3, padding=1), (64, 56, 56)),
    ("3x3 conv 256->256 @14", lambda: nn.Conv2d(256, 256, 3, padding=1), (256, 14, 14)),
    ("3x3 depthwise 96 @56", lambda: nn.Conv2d(96, 96, 3, padding=1, groups=96), (96, 56, 56)),
    ("3x3 grouped 128, 32 groups @28", lambda: nn.Conv2d(128, 128, 3, padding=1, groups=32), (128, 28, 28)),
    ("4x4/2 conv-transpose 64->64 @16", lambda: nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), (64, 16, 16)),
    ("linear 1024->512", lambda: nn.Linear(1024, 512), (1024,)),
]


def _macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    from workbench.profile.quick import count_macs

    return count_macs(module, (torch.zeros(1, *shape),))


def _fp32_vs_int8(model: nn.Module, inputs: dict[str, torch.Tensor], work: Path, *, repeats: int,
                  threads: int) -> dict[str, Any]:
    """Export ``model``, quantize it (QDQ and QOperator, stems in fp32 or not; the fastest kept), time both."""
    from workbench.compress.quantize import grouped_convs, latency, quantize_onnx, stem_convs
    from workbench.profile.export import export_onnx

    fp32 = work / "fp32.onnx"
    names = export_onnx(model, inputs, fp32, atol=float("inf"))["inputs"]  # unused inputs are dropped
    calib = [{k: inputs[k].numpy() for k in names}]
    built: dict[str, Path] = {}
    for fmt in ("qdq", "qoperator"):
        for stem in (False, True) if stem_convs(fp32) else (False,):
            for grouped in (False, True) if grouped_convs(fp32) else (False,):
                path = work / f"{fmt}{'-stem' if stem else ''}{'-grouped' if grouped else ''}.onnx"
                try:
                    quantize_onnx(fp32, path, calib, fmt=fmt, stem_fp32=stem, grouped_fp32=grouped)
                    built[path.stem] = path
                except WorkbenchError:
                    continue
    if not built:
        raise WorkbenchError("onnxruntime could not quantize it")
    one = {k: inputs[k][:1].numpy() for k in names}
    lat = latency({"fp32": fp32, **built}, one, threads=threads, warmup=5, repeats=repeats)
    best = min(built, key=lambda k: lat[k]["median_ms"])
    return {"fp32_ms": lat["fp32"]["median_ms"], "int8_ms": lat[best]["median_ms"], "int8_layout": best,
            "speedup": lat["fp32"]["median_ms"] / lat[best]["median_ms"]}


def layers(repeats: int, threads: int) -> list[dict[str, Any]]:
    rows = []
    torch.manual_seed(0)
    for label, make, shape in LAYERS:
        module = nn.Sequential(make(), nn.ReLU()).eval()
        x = torch.rand(4, *shape)
        with tempfile.TemporaryDirectory() as tmp:
            res = _fp32_vs_int8(module, {"input": x}, Path(tmp), repeats=repeats, threads=threads)
        res.update(layer=label, macs=_macs(module, shape))
        res["fp32_gmacs_per_s"] = res["macs"] / res["fp32_ms"] / 1e6
        rows.append(res)
        print(f"  {label}: fp32 {res['fp32_ms']:.3f} ms, int8 {res['int8_ms']:.3f} ms -> {res['speedup']:.2f}x",
              file=sys.stderr)
    return rows


def teachers(names: list[str], presets: list[str], repeats: int, threads: int) -> list[dict[str, Any]]:
    from teachers import example_inputs, get_teacher
    from workbench.profile.quick import count_macs

    rows = []
    for name in names:
        for preset in presets:
            torch.manual_seed(0)
            model = get_teacher(name, preset=preset).eval()
            inputs = example_inputs(name, preset, batch=2, generator=torch.Generator().manual_seed(0))
            row: dict[str, Any] = {"teacher": name, "preset": preset,
                                   "macs": count_macs(model, tuple(v[:1] for v in inputs.values()))}
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    row.update(_fp32_vs_int8(model, inputs, Path(tmp), repeats=repeats, threads=threads))
            except WorkbenchError as exc:
                row["error"] = str(exc)
            rows.append(row)
            print(f"  {name} {preset}: " + (f"{row['speedup']:.2f}x" if "speedup" in row else row["error"]),
                  file=sys.stderr)
    return rows


def profile_pair(folder: Path, runs: int) -> dict[str, dict[str, float]]:
    """Time per layer kind (us per batch-1 call, one thread) of ``folder``'s model.onnx and model.int8.onnx."""
    from workbench.profile.export import onnx_session
    from workbench.profile.ops import time_per_kind

    fp32 = folder / "model.onnx"
    rng = np.random.default_rng(0)
    feed = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            for i in onnx_session(fp32, threads=1).get_inputs()}
    return {label: time_per_kind(folder / name, feed, runs=runs, threads=1, kinds_from=fp32)["kinds"]
            for label, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["layers", "teachers", "all"], default="all")
    ap.add_argument("--pair", type=Path, default=None,
                    help="Instead: time per layer kind of a `workbench quantize` output folder's two models.")
    ap.add_argument("--teachers", default=",".join(TEACHERS))
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = [t.strip() for t in args.teachers.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TEACHERS))
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if unknown or not set(presets) <= {"cpu", "paper"} or args.repeats < 1 or args.threads < 1:
        print(f"error: unknown teachers {unknown} or presets {presets}, or repeats/threads < 1", file=sys.stderr)
        return 2
    if args.pair is not None:
        if not (args.pair / "model.onnx").is_file() or not (args.pair / "model.int8.onnx").is_file():
            print(f"error: {args.pair} holds no model.onnx and model.int8.onnx (a `workbench quantize` output)",
                  file=sys.stderr)
            return 2
        per = profile_pair(args.pair, args.repeats)
        if args.json:
            print(json.dumps(per, indent=2))
            return 0
        print(f"\nTime per layer kind, us per batch-1 call, 1 thread, mean of {args.repeats} ({args.pair}):\n")
        print("| layer kind | fp32 us | int8 us | int8 speed-up |")
        print("|---|---:|---:|---:|")
        kinds = sorted(set(per["fp32"]) | set(per["int8"]), key=lambda k: -per["fp32"].get(k, 0.0))
        for k in kinds:
            a, b = per["fp32"].get(k, 0.0), per["int8"].get(k, 0.0)
            print(f"| {k} | {a:.0f} | {b:.0f} | {a / b:.2f}x |" if a and b else f"| {k} | {a:.0f} | {b:.0f} | |")
        a, b = sum(per["fp32"].values()), sum(per["int8"].values())
        print(f"| **all** | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
        return 0
    out: dict[str, Any] = {"threads": args.threads, "batch": 1, "runtime": "onnxruntime CPUExecutionProvider"}
    if args.part in ("layers", "all"):
        out["layers"] = layers(args.repeats, args.threads)
    if args.part in ("teachers", "all"):
        out["teachers"] = teachers(names, presets, args.repeats, args.threads)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "layers" in out:
        print(f"\nSingle layers, batch 1, {args.threads} thread(s), median of {args.repeats}:\n")
        print("| layer | MACs | fp32 ms | fp32 GMAC/s | int8 ms | int8 layout | int8 speed-up |")
        print("|---|---:|---:|---:|---:|---|---:|")
        for r in out["layers"]:
            print(f"| {r['layer']} | {r['macs'] / 1e6:.1f} M | {r['fp32_ms']:.3f} | {r['fp32_gmacs_per_s']:.0f} | "
                  f"{r['int8_ms']:.3f} | {r['int8_layout']} | {r['speedup']:.2f}x |")
    if "teachers" in out:
        print(f"\nTeachers with random weights, batch 1, {args.threads} thread(s), median of {args.repeats}:\n")
        print("| teacher | preset | MACs | fp32 ms | int8 ms | int8 layout | int8 speed-up |")
        print("|---|---|---:|---:|---:|---|---:|")
        for r in out["teachers"]:
            if "error" in r:
                print(f"| {r['teacher']} | {r['preset']} | {r['macs'] / 1e6:.0f} M | | | {r['error']} | |")
                continue
            print(f"| {r['teacher']} | {r['preset']} | {r['macs'] / 1e6:.0f} M | {r['fp32_ms']:.2f} | "
                  f"{r['int8_ms']:.2f} | {r['int8_layout']} | {r['speedup']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
