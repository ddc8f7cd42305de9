"""`workbench distill`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workbench.cli._common import (DEVICE_HELP, SPEC_HELP, JsonOption, WEIGHTS_HELP, console, macs_text, metric_text,
    model_run, parse_sets, print_json, user_errors)


def distill_cmd(
    run: str = typer.Argument(..., metavar="TEACHER", help="The teacher: " + SPEC_HELP),
    student: str = typer.Option(..., "--student", help="Student name (see `workbench students`), or "
                                "package.module:factory of the teacher's task (its keyword arguments: --model)."),
    preset: str | None = typer.Option(None, "--preset", help="Student preset (default tiny), or auto: the default "
                                      "preset with the hint width set to the teacher's participation ratio."),
    kd: str = typer.Option("response", "--kd", help="KD kinds, comma-separated: response, feature, "
                          "saliency (match the teacher's input-gradient saliency maps)."),
    alpha: float = typer.Option(0.5, "--alpha", help="Weight of the KD loss: (1-alpha)*task + alpha*KD."),
    temperature: float = typer.Option(4.0, "--temperature", help="Softmax/sigmoid temperature for logits and heat maps."),
    hints: list[str] = typer.Option([], "--hint", help="TEACHER_LAYER:STUDENT_LAYER (repeatable; with --kd feature)."),
    hint_weight: float = typer.Option(1.0, "--hint-weight", help="Weight of the feature (hint) loss inside KD."),
    saliency_weight: float = typer.Option(1.0, "--saliency-weight", help="Weight of the saliency loss inside KD "
                                          "(with --kd saliency)."),
    saliency_grid: int = typer.Option(16, "--saliency-grid", help="Saliency maps are averaged down to at most "
                                      "this many cells per side before matching (0: full resolution)."),
    saliency_target: str | None = typer.Option(None, "--saliency-target", help="The explained target column "
                                               "whose maps are matched (name or index, as `analyze saliency "
                                               "--target`); default every column (each costs a double backward)."),
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
    weights: Path | None = typer.Option(None, "--weights", help="The teacher's weights: " + WEIGHTS_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    as_json: JsonOption = False,
) -> None:
    """Distill a trained run into a student (response, FitNets feature and/or saliency KD), optionally with a
    no-KD control."""
    from workbench.compress.distill import distill

    recipe = {**parse_sets(sets, "--set"), **{k: v for k, v in {"lr": lr, "n_train": n_train}.items() if v is not None}}
    with model_run(run, task=task, weights=weights, device=device) as folder:
        summary = distill(folder, out, student=student, preset=preset,
                          student_overrides=parse_sets(model_sets, "--model"),
                          kd=[k.strip() for k in kd.split(",") if k.strip()], alpha=alpha, temperature=temperature,
                          hints=hints, hint_weight=hint_weight,
                          saliency_weight=saliency_weight, saliency_grid=saliency_grid,
                          saliency_target=saliency_target, response_loss=response_loss, control=control,
                          epochs=epochs, recipe_overrides=recipe, seed=seed, force=force, progress=not as_json,
                          device=device, on_event=None if as_json else _say_auto_size(student))
    if as_json:
        print_json(summary)
        return
    pm = summary["primary_metric"]
    spreset = f" ({summary['student']['preset']})" if summary["student"].get("preset") else ""
    table = Table(title=f"distillation into {summary['student']['name']}{spreset}, task {summary['task']}")
    for col in ("model", "params", "MACs", f"best {pm}"):
        table.add_column(col, justify="left" if col == "model" else "right")
    t, s = summary["teacher"], summary["student"]
    table.add_row("teacher", f"{t['params']:,}", macs_text(t["macs"]), metric_text(t[pm]))
    table.add_row(f"student, {'+'.join(summary['kd']['kd'])} KD", f"{s['params']:,}", macs_text(s["macs"]), metric_text(s["best"]))
    if "control" in summary:
        c = summary["control"]
        table.add_row("control, no KD", f"{c['params']:,}", macs_text(c["macs"]), metric_text(c["best"]))
    console.print(table)
    if s.get("macs_ratio") is not None:
        console.print(f"student MACs: {100 * s['macs_ratio']:.1f}% of the teacher's; "
                      f"{pm}: {summary['student_vs_teacher']:.3f}x the teacher's")
    if "kd_vs_control" in summary:
        k = summary["kd_vs_control"]
        console.print(f"KD vs control: {metric_text(k['student'])} vs {metric_text(k['control'])} "
                      f"({'KD better' if k['kd_better'] else 'KD not better'})")
    folders = ", ".join(f"{k} {summary[k]['run']}" for k in ("student", "control") if k in summary)
    console.print(f"run folders: {folders}; summary: [bold]{Path(summary['out']) / 'summary.json'}[/bold]")


def _say_auto_size(student: str):
    """An on_event callback printing auto-sizing's one line (before training starts)."""
    def on_event(kind: str, record: dict) -> None:
        if kind == "auto_size":
            from workbench.compress.autosize import describe

            console.print(describe(record, student), highlight=False, markup=False, soft_wrap=True)
    return on_event


def register(app: typer.Typer) -> None:
    """Add `distill` to the top-level app."""
    app.command("distill")(user_errors(distill_cmd))
