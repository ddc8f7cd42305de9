"""`workbench quantize`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workbench.cli._common import (DEVICE_HELP, SPEC_HELP, JsonOption, ModelSetsOption, PresetOption, TaskOption,
    WeightsOption, console, metric_text, model_run, print_json, user_errors)


def quantize_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help=SPEC_HELP),
    out: Path = typer.Option(..., "--out", help="Output folder: model.onnx, model.int8.onnx, summary.json."),
    n_calib: int = typer.Option(256, "--n-calib", help="Calibration samples, drawn across subjects from the run's own training split."),
    n_eval: int | None = typer.Option(None, "--n-eval", help="Validation samples evaluated (default: all)."),
    fmt: str = typer.Option("auto", "--format", help="auto (the faster of both), qdq or qoperator."),
    threads: int = typer.Option(1, "--threads", help="onnxruntime intra-op threads for the latency."),
    repeats: int = typer.Option(200, "--repeats", help="Timed calls per model (batch 1)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    preset: PresetOption = None,
    model_sets: ModelSetsOption = [],
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " Where onnxruntime evaluates and times "
                               "(its CUDA provider where installed); calibration runs on the CPU."),
    as_json: JsonOption = False,
) -> None:
    """int8 post-training static quantization with onnxruntime; accuracy and batch-1 latency against fp32."""
    from workbench.compress.quantize import quantize
    from workbench.profile.machine import latency_setup_text

    with model_run(run, task=task, weights=weights, preset=preset, model_sets=model_sets, device=device) as folder:
        summary = quantize(folder, out, n_calib=n_calib, n_eval=n_eval, fmt=fmt, threads=threads, repeats=repeats,
                           force=force, progress=not as_json, device=device)
    summary["run"] = run
    if as_json:
        print_json(summary)
        return
    pm = summary["primary_metric"]
    table = Table(title=f"int8 quantization of {summary['run']} ({summary['int8']['candidate']})")
    for col in ("model", pm, "b1 median ms", "b1 CPU ms", "size"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for key in ("fp32", "int8"):
        r = summary[key]
        cpu = r["latency_b1"].get("cpu_median_ms")
        table.add_row(key, metric_text(r[pm]), f"{r['latency_b1']['median_ms']:.3f}", "n/a" if cpu is None else f"{cpu:.3f}",
                      f"{r['bytes'] / 1e6:.2f} MB")
    console.print(table)
    lat = summary.get("latency") or {}
    prov = lat.get("provider")  # the version is in the machine text
    runtime = "onnxruntime" + (f" ({prov})" if prov and prov != "CPUExecutionProvider" else "")
    console.print(latency_setup_text(runtime, lat.get("threads"), lat.get("batch"), lat.get("machine")),
                  highlight=False, soft_wrap=True)
    cpu_speedup = summary.get("speedup_b1_cpu_time")
    console.print(f"speedup at batch 1, {summary['latency']['threads']} thread(s): {summary['speedup_b1']:.2f}x wall-clock"
                  + ("" if cpu_speedup is None else f", {cpu_speedup:.2f}x CPU time")
                  + f"; {pm} change {100 * summary['metric_change']:+.2f}% (positive = worse)")
    shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(summary["layers"]["share"].items(), key=lambda kv: -kv[1]))
    console.print(f"MACs by layer kind: {shares}")
    if "warning" in summary:
        console.print(f"[bold yellow]warning:[/bold yellow] {summary['warning']}")
    console.print(f"written: [bold]{out}[/bold] (model.onnx, model.int8.onnx, summary.json)")


def register(app: typer.Typer) -> None:
    """Add `quantize` to the top-level app."""
    app.command("quantize")(user_errors(quantize_cmd))
