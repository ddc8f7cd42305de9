"""`workbench profile | export | bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from workbench.cli._common import (DEVICE_HELP, ModelSetsOption, PresetOption, TaskOption, WeightsOption, console,
    fail, model_run, parse_sets, print_json, progress_bar, user_errors)

_TARGET_HELP = ("A teacher or student name (with --preset), a run folder, or package.module:factory (with --task, "
                "or with --input shapes).")






def _n(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3f} {unit}"
    return f"{x:.0f}"


def profile_cmd(
    target: str = typer.Argument(..., help=_TARGET_HELP),
    preset: str = typer.Option("cpu", "--preset", help="Teacher preset: cpu or paper."),
    inputs: list[str] = typer.Option([], "--input", help="name=CxHxW per sample (TxCxHxW for a track); repeatable."),
    model_sets: list[str] = typer.Option([], "--model", help="Teacher option key=value (e.g. backbone=mobv2)."),
    image: str | None = typer.Option(None, "--image", help="Camera frame WxH: count at the padded size the network sees."),
    resize: int | None = typer.Option(None, "--resize", help="Resize the --image frame to this width first (aspect kept)."),
    stride: int = typer.Option(32, "--stride", help="Network stride the frame is padded to a multiple of."),
    depth: int = typer.Option(2, "--depth", help="Module depth of the per-layer table."),
    top: int | None = typer.Option(None, "--top", help="Show only the N layers with the most MACs."),
    batch: int = typer.Option(1, "--batch", help="Batch size counted."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " Counts do not depend on it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Params, MACs and FLOPs with a per-layer table (calflops, cross-checked against torch's counter)."""
    from workbench.profile.padding import parse_size
    from workbench.profile.target import profile_target, resolve_target

    size = parse_size(image) if image else None
    if resize is not None and size is None:
        fail("--resize needs --image WxH")
    with progress_bar("profiling", 2, enabled=not as_json, transient=True) as advance:
        t = resolve_target(target, preset=preset, input_specs=inputs, batch=batch, overrides=parse_sets(model_sets, "--model"),
                           task=task, weights=weights, device=device)
        advance(1, "counting")
        report = profile_target(t, image=size, resize=resize, stride=stride, depth=depth, top=top)
        advance(1)
    if as_json:
        print_json(report)
        return
    _print_profile(report)


def _print_profile(r: dict[str, Any]) -> None:
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in r["input_shapes"].items())
    head = Table(title=f"{r['target']}  [{shapes}]", show_header=True)
    head.add_column("", justify="left", no_wrap=True)
    for col in ("workbench", "calflops", "torch counter", "calflops vs torch"):
        head.add_column(col, justify="right")
    head.add_row("params", f"{r['params']:,}", "", "", "")
    head.add_row("MACs", f"{r['macs']:,}", f"{r['macs_calflops']:,}", f"{r['macs_torch']:,}",
                 f"{r['counter_diff']['macs_calflops_vs_torch']:+.2%}")
    head.add_row("FLOPs", f"{r['flops']:,}", f"{r['flops_calflops']:,}", f"{r['flops_torch']:,}",
                 f"{(r['flops_calflops'] - r['flops_torch']) / max(r['flops_torch'], 1):+.2%}")
    if r["macs_rnn"]:
        head.add_row("LSTM/GRU MACs", f"{r['macs_rnn']:,}", "0", "0", "")
    console.print(head)
    img = r.get("image")
    if img and img.get("padded"):
        console.print(f"frame {img['raw'][0]}x{img['raw'][1]} -> network input {img['padded'][0]}x{img['padded'][1]} "
                      f"(padded to a multiple of {img['stride']}); MACs on padding: {img['macs_padding']:,} "
                      f"({img['padding_fraction']:.1%}), raw-size equivalent {img['macs_raw_equivalent']:,}", highlight=False)
    table = Table(title=f"per layer (depth {r['depth']})")
    # Each counter's own column only where they disagree on some layer (else the table stays narrow).
    split = any(row["macs_calflops"] != row["macs_torch"] for row in r["layers"])
    table.add_column("layer", justify="left", overflow="fold", min_width=16)
    table.add_column("type", justify="left", overflow="ellipsis", max_width=12)
    for col in ("params", "MACs", "share", *(("calflops", "torch") if split else ())):
        table.add_column(col, justify="right")
    for row in r["layers"]:
        mark = " *" if row["macs_rnn"] else ""
        cells = [row["name"], row["type"], f"{row['params']:,}", _n(row["macs"]) + mark, f"{row['share']:.1%}"]
        table.add_row(*cells, *((_n(row["macs_calflops"]), _n(row["macs_torch"])) if split else ()))
    om = r["layers_omitted"]
    if om["count"]:
        table.add_row(f"({om['count']} more)", "", f"{om['params']:,}", _n(om["macs"]),
                      f"{om['macs'] / max(r['macs'], 1):.1%}", *(("", "") if split else ()))
    console.print(table)
    for note in r["notes"]:
        console.print(f"- {note}", markup=False, highlight=False)
    if any(row["macs_rnn"] for row in r["layers"]):
        console.print("* includes recurrent-layer MACs by closed form (0 in both counters)", highlight=False)


def export_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help="A run folder (config.json + checkpoints/), or " + _TARGET_HELP),
    onnx_path: Path = typer.Option(..., "--onnx", help="Output .onnx file (written atomically)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    samples: int = typer.Option(8, "--samples", help="Samples of the run's own validation split the parity check runs on."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    preset: PresetOption = None,
    model_sets: ModelSetsOption = [],
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " Where onnxruntime runs the parity check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Export a run's model to ONNX and check it in onnxruntime against PyTorch (max |diff| <= 1e-4)."""
    from workbench.profile.export import export_run

    if onnx_path.is_dir():
        fail(f"{onnx_path}: is a folder, expected a file path")
    if onnx_path.exists() and not force:
        fail(f"{onnx_path}: file exists (use --force to replace it)")
    with progress_bar("exporting", 1, enabled=not as_json, transient=True) as advance:
        with model_run(run, task=task, weights=weights, preset=preset, model_sets=model_sets, device=device) as folder:
            out = export_run(folder, onnx_path, n=samples, opset=opset, device=device)
        out["run"] = run
        advance(1)
    if as_json:
        print_json(out)
        return
    table = Table(title=f"ONNX export of {run}")
    table.add_column("", justify="left")
    table.add_column("value", justify="left")
    table.add_row("file", f"{out['path']} ({out['bytes']:,} bytes, opset {out['opset']})")
    table.add_row("inputs (batch axis dynamic)", ", ".join(out["inputs"]))
    table.add_row("outputs", ", ".join(v if k == v else f"{k} as {v}" for k, v in out["outputs"].items()))
    if out["unused_inputs"]:
        table.add_row("unused inputs (dropped)", ", ".join(out["unused_inputs"]))
    table.add_row("max |onnxruntime - PyTorch|", f"{out['max_abs_diff']:.3g} (<= {out['atol']:g}; "
                  f"{out['data']}, batch {out['batch_checked'][0]} and 1)")
    console.print(table)
    console.print(f"wrote {out['path']}")


def bench_cmd(
    target: str = typer.Argument(..., help=_TARGET_HELP + " Or an .onnx file (onnxruntime only, with --input)."),
    preset: str = typer.Option("cpu", "--preset", help="Teacher preset: cpu or paper."),
    inputs: list[str] = typer.Option([], "--input", help="name=CxHxW per sample; repeatable."),
    model_sets: list[str] = typer.Option([], "--model", help="Teacher option key=value."),
    batch: int = typer.Option(32, "--batch", help="Throughput batch size (batch 1 is always measured)."),
    threads: int = typer.Option(2, "--threads", help="Threads for PyTorch and onnxruntime (intra-op)."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed calls before timing."),
    repeats: int = typer.Option(30, "--repeats", help="Timed calls per cell."),
    backend: str = typer.Option("both", "--backend", help="eager, onnxruntime or both."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " onnxruntime uses its CUDA provider there."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Latency at batch 1 and a throughput batch: PyTorch eager and onnxruntime, median and p90."""
    from workbench.profile.bench import BACKENDS, benchmark
    from workbench.profile.inputs import parse_input_specs, random_inputs
    from workbench.profile.machine import latency_setup_text
    from workbench.profile.target import resolve_target

    if backend not in (*BACKENDS, "both"):
        fail(f"unknown --backend {backend!r}; expected eager, onnxruntime or both")
    backends = BACKENDS if backend == "both" else (backend,)
    sizes = sorted({1, batch})
    if target.endswith(".onnx"):
        if not inputs:
            fail("an .onnx target needs its inputs: --input name=CxHxW")
        if backend == "eager":
            fail("an .onnx file runs in onnxruntime only")
        subject, feed, label = target, random_inputs(parse_input_specs(inputs), 1), target
    else:
        t = resolve_target(target, preset=preset, input_specs=inputs, batch=min(batch, 8), overrides=parse_sets(model_sets, "--model"),
                           task=task, weights=weights)
        subject, feed, label = t.model, t.inputs, t.label
        data = t.data
    cells = len(sizes) * (1 if target.endswith(".onnx") else len(backends))
    with progress_bar("benchmarking", cells, enabled=not as_json, transient=True) as advance:
        out = benchmark(subject, feed, batch_sizes=sizes, threads=threads, warmup=warmup, repeats=repeats,
                        backends=backends, progress=advance, device=device)
    out["target"] = label
    out["data"] = locals().get("data") or {"source": "random inputs", "format": None, "split": None}
    if as_json:
        print_json(out)
        return
    table = Table(title=f"latency of {label} on {out['device']} ({threads} threads, {warmup} warm-up, {repeats} timed calls)")
    for col in ("backend", "batch", "median ms", "p90 ms", "items/s"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for b in (b for b in BACKENDS if b in out):
        for key, cell in out[b].items():
            table.add_row(b, key.split("_")[1], f"{cell['median_ms']:.2f}", f"{cell['p90_ms']:.2f}",
                          f"{cell['items_per_s']:.1f}")
    console.print(table)
    runtimes = " and ".join({"eager": "PyTorch eager", "onnxruntime": "onnxruntime"}[b] for b in BACKENDS if b in out)
    where = "" if out["device"] == "cpu" else f" on {out['device']}"
    console.print(latency_setup_text(runtimes + where, threads, out["batch_sizes"], out.get("machine")),
                  highlight=False, soft_wrap=True)
    if "onnx_max_abs_diff" in out:
        console.print(f"onnxruntime parity: max |diff| {out['onnx_max_abs_diff']:.3g}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("profile")(user_errors(profile_cmd))
    app.command("export")(user_errors(export_cmd))
    app.command("bench")(user_errors(bench_cmd))
