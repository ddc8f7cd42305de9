"""`workbench teachers | train | eval | predict`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from workbench.cli._common import console, fail, parse_sets, print_json, user_errors




def teachers_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the registered teachers: source write-up, task, inputs, params and MACs per preset."""
    from teachers import example_inputs, get_teacher, list_teachers, teacher_spec
    from workbench.profile.quick import count_macs

    rows = []
    for name in list_teachers():
        spec = teacher_spec(name)
        row = {"name": name, "source": spec.source, "task": spec.task, "inputs": list(spec.inputs), "presets": {}}
        for preset in ("cpu", "paper"):
            model = get_teacher(name, preset=preset).eval()
            ex = example_inputs(name, preset=preset, batch=1)
            shapes = {k: list(v.shape[1:]) for k, v in ex.items()}
            row["presets"][preset] = {"params": sum(p.numel() for p in model.parameters()),
                                      "macs": count_macs(model, tuple(ex.values())), "input_shapes": shapes}
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table(title="Teachers")
    for col in ("name", "source", "task", "inputs", "params cpu", "MACs cpu", "params paper", "MACs paper"):
        table.add_column(col, justify="right" if col.startswith(("params", "MACs")) else "left")
    for r in rows:
        c, p = r["presets"]["cpu"], r["presets"]["paper"]
        table.add_row(r["name"], r["source"], r["task"], ", ".join(r["inputs"]), f"{c['params']:,}", _g(c["macs"]),
                      f"{p['params']:,}", _g(p["macs"]))
    console.print(table)


def _g(macs: int | None) -> str:
    return "n/a" if macs is None else f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.1f} M"


def train_cmd(
    teacher: str = typer.Argument(..., help="Teacher name (see `workbench teachers`)."),
    preset: str = typer.Option("cpu", "--preset", help="cpu or paper."),
    data: str = typer.Option("synth", "--data", help="'synth' (SynthGaze) or a path to a data set."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Layout of --data (default: detected)."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="SynthGaze training samples."),
    n_val: Optional[int] = typer.Option(None, "--n-val", help="SynthGaze validation samples (held-out subjects)."),
    sets: List[str] = typer.Option([], "--set", help="Training option key=value (e.g. patience=4); repeatable."),
    model_sets: List[str] = typer.Option([], "--model", help="Model option key=value (e.g. backbone=mobv2); repeatable."),
    prior_head: Optional[bool] = typer.Option(None, "--prior-head/--no-prior-head", help="gazepose: head-pose prior."),
    prior_landmark: Optional[bool] = typer.Option(None, "--prior-landmark/--no-prior-landmark", help="gazepose: landmark prior."),
    gaussian_drop: Optional[bool] = typer.Option(None, "--gaussian-drop/--no-gaussian-drop", help="gazepose: temporal dropout."),
    seed: int = typer.Option(0, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<teacher>/<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log to TensorBoard (when installed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics summary as JSON (no progress bars)."),
) -> None:
    """Train a teacher on SynthGaze (held-out subjects for validation) or on a data set."""
    from workbench.train.engine import TrainRequest, fit

    if resume and out is None:
        fail("--resume needs --out RUN_FOLDER")
    if resume and force:
        fail("--resume and --force contradict each other")
    model_overrides = parse_sets(model_sets, "--model")
    for key, val in (("prior_head", prior_head), ("prior_landmark", prior_landmark), ("gaussian_drop", gaussian_drop)):
        if val is not None:
            if teacher != "gazepose":
                fail(f"--{key.replace('_', '-')} applies to gazepose only, not {teacher!r}")
            model_overrides[key] = val
    named = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "n_train": n_train, "n_val": n_val}
    # Named options win over --set only when given.
    recipe_overrides = {**parse_sets(sets, "--set"), **{k: v for k, v in named.items() if v is not None}}
    _check_teacher(teacher, preset)
    req = TrainRequest(teacher=teacher, preset=preset, model_overrides=model_overrides,
                       recipe_overrides=recipe_overrides, data=data, fmt=fmt,
                       seed=seed, out=out, resume=resume, force=force, device=device, tensorboard=tensorboard,
                       progress=not as_json)
    summary = fit(req)
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)
    console.print(f"run folder: [bold]{summary['run']}[/bold]")


def _check_teacher(teacher: str, preset: str) -> None:
    from teachers import list_teachers

    names = list_teachers()
    if teacher not in names:
        fail(f"unknown teacher {teacher!r}; expected one of {', '.join(names)}")
    if preset not in ("cpu", "paper"):
        fail(f"unknown preset {preset!r}; expected cpu or paper")


def _print_summary(summary: dict) -> None:
    table = Table(title=f"{summary['teacher']} ({summary['preset']}), task {summary['task']}")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("constant predictor", justify="right")
    for key, value in summary["final"].items():
        const = summary["constant"].get(key)
        table.add_row(key, f"{value:.4g}", "" if const is None else f"{const:.4g}")
    console.print(table)
    console.print(f"params {summary['params']:,}; best {summary['primary_metric']} {summary['best']:.4g} at epoch "
                  f"{summary['best_epoch']}; {summary['epochs_run']} epochs in {summary['train_seconds']:.0f} s"
                  + (" (stopped early)" if summary["stopped_early"] else ""))


def eval_cmd(
    run: Path = typer.Argument(..., help="A run folder."),
    data: str = typer.Option("val", "--data", help="'val' (the run's validation split), 'synth', or a data set path."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    which: str = typer.Option("best", "--checkpoint", help="best or last."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate a run's checkpoint on its validation split or on another data set."""
    from workbench.train.evaluate import evaluate_run

    result = evaluate_run(run, data=data, fmt=fmt, which=which)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{result['teacher']} on {result['data']} ({result['samples']} samples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result["metrics"].items():
        table.add_row(k, f"{v:.4g}")
    console.print(table)


def predict_cmd(
    run: Path = typer.Argument(..., help="A run folder."),
    data: Optional[str] = typer.Option(None, "--data", help="'synth' or a data set path."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    out: Path = typer.Option(..., "--out", help="Prediction file (MC4: three-line file; Looking-At-Me: CSV; else CSV)."),
    which: str = typer.Option("best", "--checkpoint"),
    n: int = typer.Option(256, "--n", help="Samples when --data synth."),
    images: Optional[Path] = typer.Option(None, "--images", help="Photos instead of a data set: a folder, an image "
                                          "or a video; faces are detected and normalized; CSV, one row per frame."),
    detector: Optional[str] = typer.Option(None, "--detector", help="With --images: package.module:Class (default: "
                                           "OpenCV's cascades)."),
    as_json: bool = typer.Option(False, "--json", help="With --images: print the summary as JSON."),
) -> None:
    """Write predictions in the write-up's format (MC4 three-line file, Looking-At-Me CSV, else CSV)."""
    from workbench.train.evaluate import predict_run

    if images is not None:
        from workbench.cli._images import predict_images_cmd

        return predict_images_cmd(run, images, out, which=which, detector=detector, as_json=as_json)
    if data is None:
        fail("give --data (a data set or 'synth') or --images (photos, a folder or a video)")
    path, count = predict_run(run, data=data, fmt=fmt, out=out, which=which, n=n)
    console.print(f"wrote {count} predictions to [bold]{path}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("teachers")(user_errors(teachers_cmd))
    app.command("train")(user_errors(train_cmd))
    app.command("eval")(user_errors(eval_cmd))
    app.command("predict")(user_errors(predict_cmd))


__all__ = ["register"]
