"""`workbench teachers | train | eval | predict`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from workbench.cli._common import (DEVICE_HELP, WEIGHTS_HELP, ModelSetsOption, PresetOption, TaskOption,
    WeightsOption, console, fail, model_run, parse_sets, print_json, print_key_values, user_errors)




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


MODEL_HELP = ("A teacher or student name (see `workbench teachers` / `workbench students`), a run folder, or "
              "package.module:factory with --task (the working directory is importable).")


def train_cmd(
    teacher: str = typer.Argument(..., metavar="MODEL", help="A teacher or student name, or package.module:factory "
                                  "with --task (the working directory is importable)."),
    task: TaskOption = None,
    weights: Optional[Path] = typer.Option(None, "--weights", help="Starting weights: " + WEIGHTS_HELP),
    preset: Optional[str] = typer.Option(None, "--preset", help="Teacher preset cpu (default) or paper; a student's "
                                         "tiny (default) or small."),
    data: Optional[str] = typer.Option(None, "--data", help="'synth' (SynthGaze, the default) or a path to a data set."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Layout of --data (default: detected)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", metavar="RUN", help="Start from another run's "
                                            "best checkpoint (a run folder or a .pt file): every tensor whose name "
                                            "and shape match is loaded, the rest keep their fresh init."),
    init_map: List[str] = typer.Option([], "--init-map", metavar="SRC=DST", help="With --init-from: take the "
                                       "source tensors under prefix SRC as DST... (e.g. features.=backbone.features."
                                       "); only mapped tensors are loaded; repeatable."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="SynthGaze training samples."),
    n_val: Optional[int] = typer.Option(None, "--n-val", help="SynthGaze validation samples (held-out subjects)."),
    sets: List[str] = typer.Option([], "--set", help="Training option key=value (e.g. patience=4); repeatable."),
    model_sets: List[str] = typer.Option([], "--model", help="Model option key=value (e.g. backbone=mobv2; a "
                                         "factory's keyword arguments); repeatable."),
    prior_head: Optional[bool] = typer.Option(None, "--prior-head/--no-prior-head", help="gazepose: head-pose prior."),
    prior_landmark: Optional[bool] = typer.Option(None, "--prior-landmark/--no-prior-landmark", help="gazepose: landmark prior."),
    gaussian_drop: Optional[bool] = typer.Option(None, "--gaussian-drop/--no-gaussian-drop", help="gazepose: temporal dropout."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<model>/<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped (only --epochs "
                                "may change)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run folder."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log to TensorBoard (when installed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics summary as JSON (no progress bars)."),
) -> None:
    """Train a model (teacher, student or your own factory) on SynthGaze or on a data set."""
    from workbench.modelspec import resolve_device
    from workbench.train.engine import TrainRequest, fit
    from workbench.train.init_from import parse_init_map

    if resume and out is None:
        fail("--resume needs --out RUN_FOLDER")
    if resume and force:
        fail("--resume and --force contradict each other")
    resolve_device(device)  # a missing device is one line before any work
    if init_map and init_from is None:
        fail("--init-map applies to --init-from RUN; give --init-from too")
    if init_from is not None and (resume or weights is not None):
        fail(f"--init-from starts a new run from another run's weights; it cannot be combined with "
             f"{'--resume' if resume else '--weights'}")
    mapping = parse_init_map(init_map)
    model_overrides = parse_sets(model_sets, "--model")
    for key, val in (("prior_head", prior_head), ("prior_landmark", prior_landmark), ("gaussian_drop", gaussian_drop)):
        if val is not None:
            if teacher != "gazepose":
                fail(f"--{key.replace('_', '-')} applies to gazepose only, not {teacher!r}")
            model_overrides[key] = val
    named = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "n_train": n_train, "n_val": n_val}
    # Named options win over --set only when given.
    recipe_overrides = {**parse_sets(sets, "--set"), **{k: v for k, v in named.items() if v is not None}}
    if data is not None and not resume:
        from workbench.train.data import check_sample_counts
        from workbench.train.engine import data_source

        check_sample_counts(data_source(data), recipe_overrides)
    req = TrainRequest(teacher=teacher, preset=preset, model_overrides=model_overrides,
                       recipe_overrides=recipe_overrides, data=data, fmt=fmt, task=task, weights=weights,
                       seed=seed, out=out, resume=resume, force=force, device=device, tensorboard=tensorboard,
                       progress=not as_json, init_from=init_from, init_map=mapping or None)
    summary = fit(req)
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)
    if summary.get("init_from"):
        from workbench.train.init_from import describe

        console.print(describe(summary["init_from"]), markup=False)
    console.print(f"run folder: [bold]{summary['run']}[/bold]")


def _print_summary(summary: dict) -> None:
    preset = f" ({summary['preset']})" if summary.get("preset") else ""
    table = Table(title=f"{summary['teacher']}{preset}, task {summary['task']}")
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
    run: str = typer.Argument(..., metavar="MODEL", help="A run folder, or any model spec: " + MODEL_HELP),
    data: str = typer.Option("val", "--data", help="'val' (the run's validation split), 'synth', or a data set path."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    which: str = typer.Option("best", "--checkpoint", help="best or last."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    preset: PresetOption = None,
    model_sets: ModelSetsOption = [],
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate a model (a run's checkpoint, or a name/factory with --weights) on a data set."""
    from workbench.train.evaluate import evaluate_run

    with model_run(run, task=task, weights=weights, preset=preset, model_sets=model_sets, data=data, fmt=fmt,
                   device=device) as folder:
        result = evaluate_run(folder, data=data, fmt=fmt, which=which, device=device)
    result["run"] = run
    if as_json:
        print_json(result)
        return
    print_key_values(f"{result['teacher']} on {result['data']['label']} ({result['samples']} samples)",
                     ((k, f"{v:.4g}") for k, v in result["metrics"].items()))


def predict_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help="A run folder, or any model spec: " + MODEL_HELP),
    data: Optional[str] = typer.Option(None, "--data", help="'val', 'synth' or a data set path."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    out: Path = typer.Option(..., "--out", help="Prediction file (MC4: three-line file; Looking-At-Me: CSV; else CSV)."),
    which: str = typer.Option("best", "--checkpoint"),
    n: int = typer.Option(256, "--n", help="Samples when --data synth."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    preset: PresetOption = None,
    model_sets: ModelSetsOption = [],
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    images: Optional[Path] = typer.Option(None, "--images", help="Photos instead of a data set: a folder, an image "
                                          "or a video; faces are detected and normalized; CSV, one row per frame."),
    detector: Optional[str] = typer.Option(None, "--detector", help="With --images: package.module:Class (default: "
                                           "OpenCV's cascades)."),
    as_json: bool = typer.Option(False, "--json", help="Print a summary as JSON (where the file went, how many "
                                 "samples, which data)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
) -> None:
    """Write predictions in the write-up's format (MC4 three-line file, Looking-At-Me CSV, else CSV)."""
    from workbench.train.evaluate import predict_run

    if images is None and data is None:
        fail("give --data (a data set, 'val' or 'synth') or --images (photos, a folder or a video)")
    if out.exists() and not force:
        fail(f"{out}: exists (use --force to replace it)")
    with model_run(run, task=task, weights=weights, preset=preset, model_sets=model_sets, data=data, fmt=fmt,
                   device=device) as folder:
        if images is not None:
            from workbench.cli._images import predict_images_cmd

            return predict_images_cmd(folder, images, out, which=which, detector=detector, as_json=as_json)
        summary = predict_run(folder, data=data, fmt=fmt, out=out, which=which, n=n, device=device)
    if as_json:
        print_json(summary)
        return
    console.print(f"wrote {summary['samples']} predictions to [bold]{summary['out']}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("teachers")(user_errors(teachers_cmd))
    app.command("train")(user_errors(train_cmd))
    app.command("eval")(user_errors(eval_cmd))
    app.command("predict")(user_errors(predict_cmd))


__all__ = ["register"]
