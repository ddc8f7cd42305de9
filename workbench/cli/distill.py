"""`workbench students | distill | quantize`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workbench.cli._common import console, fail, model_run, parse_sets, print_json, user_errors




def _g(macs: int | None) -> str:
    return "n/a" if macs is None else f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.2f} M"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def students_cmd(
    task: str | None = typer.Option(None, "--task", help="Only the students of this task."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the registered students: task, family, params and MACs per preset."""
    from students import example_inputs, get_student, list_students, student_spec
    from workbench.profile.quick import count_macs
    from workbench.tasks import list_tasks

    if task is not None and task not in list_tasks():
        fail(f"unknown task {task!r}; expected one of {', '.join(list_tasks())}")
    rows = []
    for name in list_students(task):
        spec = student_spec(name)
        row = {"name": name, "task": spec.task, "description": spec.description, "inputs": list(spec.inputs),
               "hint_layer": spec.hint_layer, "presets": {}}
        for preset in spec.presets:
            model = get_student(name, preset=preset).eval()
            ex = example_inputs(name, preset, batch=1)
            row["presets"][preset] = {"params": sum(p.numel() for p in model.parameters()),
                                      "macs": count_macs(model, tuple(ex.values())),
                                      "input_shapes": {k: list(v.shape[1:]) for k, v in ex.items()}}
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table(title="Students")
    for col in ("name", "task", "preset", "params", "MACs", "family"):
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for r in rows:
        for k, (preset, p) in enumerate(r["presets"].items()):
            table.add_row(r["name"] if k == 0 else "", r["task"] if k == 0 else "", preset, f"{p['params']:,}",
                          _g(p["macs"]), r["description"] if k == 0 else "")
    console.print(table)


_SPEC_HELP = ("A run folder, a teacher name, or package.module:factory with --task (the working directory "
              "is importable).")
_TASK_HELP = "Task of a package.module:factory model."
_WEIGHTS_HELP = "State dict file loaded into a name or factory model (torch.load weights_only=True)."
_DEVICE_HELP = "auto, cpu or cuda[:N]."


def distill_cmd(
    run: str = typer.Argument(..., metavar="TEACHER", help="The teacher: " + _SPEC_HELP),
    student: str = typer.Option(..., "--student", help="Student name (see `workbench students`), or "
                                "package.module:factory of the teacher's task (its keyword arguments: --model)."),
    preset: str | None = typer.Option(None, "--preset", help="Student preset (default tiny)."),
    kd: str = typer.Option("response", "--kd", help="KD kinds, comma-separated: response, feature."),
    alpha: float = typer.Option(0.5, "--alpha", help="Weight of the KD loss: (1-alpha)*task + alpha*KD."),
    temperature: float = typer.Option(4.0, "--temperature", help="Softmax/sigmoid temperature for logits and heat maps."),
    hints: list[str] = typer.Option([], "--hint", help="TEACHER_LAYER:STUDENT_LAYER (repeatable; with --kd feature)."),
    hint_weight: float = typer.Option(1.0, "--hint-weight", help="Weight of the feature (hint) loss inside KD."),
    response_loss: str = typer.Option("auto", "--response-loss", help="auto (the task's loss form, KL for "
                                      "logits/heat maps) or mse."),
    control: bool = typer.Option(False, "--control", help="Also train the student without KD on the same budget."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (default: the teacher run's)."),
    lr: float | None = typer.Option(None, "--lr"),
    n_train: int | None = typer.Option(None, "--n-train", help="SynthGaze training samples."),
    sets: list[str] = typer.Option([], "--set", help="Training option key=value (e.g. optimizer=adam); repeatable."),
    model_sets: list[str] = typer.Option([], "--model", help="Student option key=value; repeatable."),
    seed: int | None = typer.Option(None, "--seed", help="Default: the teacher run's (same data)."),
    out: Path = typer.Option(..., "--out", help="Output folder: student/, control/, summary.json."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
    task: str | None = typer.Option(None, "--task", help="Task of a package.module:factory teacher."),
    weights: Path | None = typer.Option(None, "--weights", help="The teacher's weights: " + _WEIGHTS_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (no progress bars)."),
) -> None:
    """Distill a trained run into a student (response and/or FitNets feature KD), optionally with a no-KD control."""
    from workbench.compress.distill import distill

    recipe = {**parse_sets(sets, "--set"), **{k: v for k, v in {"lr": lr, "n_train": n_train}.items() if v is not None}}
    with model_run(run, task=task, weights=weights, device=device) as folder:
        summary = distill(folder, out, student=student, preset=preset,
                          student_overrides=parse_sets(model_sets, "--model"),
                          kd=[k.strip() for k in kd.split(",") if k.strip()], alpha=alpha, temperature=temperature,
                          hints=hints, hint_weight=hint_weight, response_loss=response_loss, control=control,
                          epochs=epochs, recipe_overrides=recipe, seed=seed, force=force, progress=not as_json,
                          device=device)
    if as_json:
        print_json(summary)
        return
    pm = summary["primary_metric"]
    spreset = f" ({summary['student']['preset']})" if summary["student"].get("preset") else ""
    table = Table(title=f"distillation into {summary['student']['name']}{spreset}, task {summary['task']}")
    for col in ("model", "params", "MACs", f"best {pm}"):
        table.add_column(col, justify="left" if col == "model" else "right")
    t, s = summary["teacher"], summary["student"]
    table.add_row("teacher", f"{t['params']:,}", _g(t["macs"]), _fmt(t[pm]))
    table.add_row(f"student, {'+'.join(summary['kd']['kd'])} KD", f"{s['params']:,}", _g(s["macs"]), _fmt(s["best"]))
    if "control" in summary:
        c = summary["control"]
        table.add_row("control, no KD", f"{c['params']:,}", _g(c["macs"]), _fmt(c["best"]))
    console.print(table)
    if s.get("macs_ratio") is not None:
        console.print(f"student MACs: {100 * s['macs_ratio']:.1f}% of the teacher's; "
                      f"{pm}: {summary['student_vs_teacher']:.3f}x the teacher's")
    if "kd_vs_control" in summary:
        k = summary["kd_vs_control"]
        console.print(f"KD vs control: {_fmt(k['student'])} vs {_fmt(k['control'])} "
                      f"({'KD better' if k['kd_better'] else 'KD not better'})")
    folders = ", ".join(f"{k} {summary[k]['run']}" for k in ("student", "control") if k in summary)
    console.print(f"run folders: {folders}; summary: [bold]{Path(summary['out']) / 'summary.json'}[/bold]")


def quantize_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help=_SPEC_HELP),
    out: Path = typer.Option(..., "--out", help="Output folder: model.onnx, model.int8.onnx, summary.json."),
    n_calib: int = typer.Option(256, "--n-calib", help="Calibration samples, drawn across subjects from the run's own training split."),
    n_eval: int | None = typer.Option(None, "--n-eval", help="Validation samples evaluated (default: all)."),
    fmt: str = typer.Option("auto", "--format", help="auto (the faster of both), qdq or qoperator."),
    threads: int = typer.Option(1, "--threads", help="onnxruntime intra-op threads for the latency."),
    repeats: int = typer.Option(200, "--repeats", help="Timed calls per model (batch 1)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
    weights: Path | None = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    preset: str | None = typer.Option(None, "--preset", help="Preset of a teacher or student name."),
    model_sets: list[str] = typer.Option([], "--model", help="Model option key=value; repeatable."),
    device: str = typer.Option("cpu", "--device", help=_DEVICE_HELP + " Where onnxruntime evaluates and times "
                               "(its CUDA provider where installed); calibration runs on the CPU."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (no progress bars)."),
) -> None:
    """int8 post-training static quantization with onnxruntime; accuracy and batch-1 latency against fp32."""
    from workbench.compress.quantize import quantize

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
        table.add_row(key, _fmt(r[pm]), f"{r['latency_b1']['median_ms']:.3f}", "n/a" if cpu is None else f"{cpu:.3f}",
                      f"{r['bytes'] / 1e6:.2f} MB")
    console.print(table)
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
    """Add `students`, `distill` and `quantize` to the top-level app."""
    app.command("students")(user_errors(students_cmd))
    app.command("distill")(user_errors(distill_cmd))
    app.command("quantize")(user_errors(quantize_cmd))
