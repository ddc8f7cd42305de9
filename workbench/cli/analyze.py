"""`workbench analyze saliency | check | embeddings | fc-importance`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from workbench.cli._common import (JsonOption, TaskOption, WeightsOption, console, fail, model_run, print_json,
    print_key_values, progress_bar, user_errors)

sub = typer.Typer(help="Explain a model: saliency maps, faithfulness checks, embeddings, FC-layer importance.",
                  no_args_is_help=True)

RUN_HELP = "A run folder, or a model given as package.module:factory (with --task or --input)."
OUT_HELP = "Output folder (default runs/analysis/<run>/<command>)."
DATA_HELP = ("'val' (default: the run's own validation split), 'train', 'synth' (fresh SynthGaze samples of the "
             "run's held-out subjects) or a data set path; samples are drawn across subjects.")
SPEC_HELP = "A run folder, a teacher/student name, or package.module:factory with --task (and --weights)."


def _default_out(run: str, command: str) -> Path:
    path = Path(run)
    slug = f"{path.parent.name}-{path.name}" if path.is_dir() and path.parent.name else run.replace(":", "-").replace(".", "-")
    return Path("runs") / "analysis" / slug.strip("-") / command


def _progress(enabled: bool):
    return lambda description, total: progress_bar(description, total, enabled=enabled)


def _shapes(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape:
            fail(f"--input expects name=C,H,W (one sample's shape), got {item!r}")
        out[name.strip()] = shape
    return out

# The options every analysis shares: where the samples come from and where the results go.
DataOption = Annotated[str, typer.Option("--data", help=DATA_HELP)]
FormatOption = Annotated[Optional[str], typer.Option("--format", help="Layout of --data (default: detected).")]
OutOption = Annotated[Optional[Path], typer.Option("--out", help=OUT_HELP)]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")]
BatchOption = Annotated[int, typer.Option("--batch-size", help="Samples run at once (bounds memory).")]


def _f(v, fmt: str = ".3g") -> str:
    return "-" if v is None else format(v, fmt)


def _wrote(summary: dict, out: Path) -> None:
    console.print(f"wrote {len(summary.get('files', []))} files to [bold]{out}[/bold]")


def saliency_cmd(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    method: Annotated[str, typer.Option("--method", "-m", help="saliency, ig, gradshap, smoothgrad, gradcam or occlusion.")] = "ig",
    n: Annotated[int, typer.Option("--n", help="Samples to explain.")] = 16,
    target: Annotated[str | None, typer.Option("--target", help="explain_target column (index or name); default all.")] = None,
    batch_size: BatchOption = 8,
    steps: Annotated[int, typer.Option("--steps", help="IntegratedGradients steps.")] = 32,
    layer: Annotated[str | None, typer.Option("--layer", help="gradcam: the conv layer (default per model).")] = None,
    baseline: Annotated[str, typer.Option("--baseline", help="ig: zero (the data mean) or blur.")] = "zero",
    task: TaskOption = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="name=C,H,W of a model without a task; repeatable.")] = None,
    data: DataOption = "val",
    fmt: FormatOption = None,
    out: OutOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
    images: Annotated[Path | None, typer.Option("--images", help="Photos instead of --data: a folder, an image or a "
                                                "video; faces are detected, normalized, and the maps drawn back on the originals.")] = None,
    detector: Annotated[str | None, typer.Option("--detector", help="With --images: package.module:Class.")] = None,
) -> None:
    """Attribution maps per input and target: overlay grids (PNG per input), raw .npz, summary.json."""
    from workbench.analyze import saliency

    out = out or _default_out(run, "saliency")
    if images is not None:
        from workbench.cli._images import saliency_images_cmd

        return saliency_images_cmd(run, images, out=out, progress=_progress(not as_json), as_json=as_json,
                                   method=method, target=target, batch_size=batch_size, steps=steps, baseline=baseline,
                                   layer=layer, detector=detector, force=force)
    summary = saliency(run, method=method, n=n, out=out, target=target, batch_size=batch_size, steps=steps,
                       layer=layer, baseline=baseline, data=data, fmt=fmt, task=task, input_shapes=_shapes(inputs) or None,
                       force=force, progress=_progress(not as_json))
    if as_json:
        print_json(summary)
        return
    from workbench.cli._images import print_saliency_table

    print_saliency_table(f"{summary['model']}: {summary['method']} on {summary['n']} samples", summary["results"],
                         mean_abs=True)
    console.print(f"data: {summary['data'].get('label', summary['data'].get('source'))}", highlight=False)
    for name, why in summary.get("eye_boxes_missing", {}).items():
        console.print(f"eye-mass n/a for {name}: {why}", highlight=False)
    for name, why in summary["skipped_inputs"].items():
        console.print(f"not attributed: {name}: {why}")
    _wrote(summary, out)


def check_cmd(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    method: Annotated[str, typer.Option("--method", "-m", help="Attribution method to check.")] = "ig",
    n: Annotated[int, typer.Option("--n", help="Samples.")] = 32,
    target: Annotated[str | None, typer.Option("--target", help="explain_target column (index or name); default all.")] = None,
    batch_size: BatchOption = 8,
    steps: Annotated[int, typer.Option("--steps", help="IntegratedGradients steps.")] = 32,
    cascade_steps: Annotated[int, typer.Option("--cascade-steps", help="Model-randomization steps (head first).")] = 6,
    randomization_n: Annotated[int, typer.Option("--randomization-n", help="Samples re-attributed per cascade step.")] = 16,
    fill: Annotated[str, typer.Option("--fill", help="Deletion: replace pixels by a blurred copy (blur) or the mean.")] = "blur",
    random_orders: Annotated[int, typer.Option("--random-orders", help="Random deletion orders to compare with.")] = 3,
    fractions: Annotated[int, typer.Option("--fractions", help="Deletion fractions, evenly spaced over [0, 1].")] = 21,
    layer: Annotated[str | None, typer.Option("--layer", help="gradcam: the conv layer.")] = None,
    baseline: Annotated[str, typer.Option("--baseline", help="ig: zero (the data mean) or blur.")] = "zero",
    data: DataOption = "val",
    fmt: FormatOption = None,
    out: OutOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Faithfulness: eye-mass, pointing game, cascading model randomization, deletion vs random order."""
    from workbench.analyze import check

    out = out or _default_out(run, f"check-{method}")
    s = check(run, method=method, n=n, out=out, target=target, batch_size=batch_size, steps=steps,
              cascade_steps=cascade_steps, randomization_n=randomization_n, fill=fill, random_orders=random_orders,
              fractions=fractions, layer=layer, baseline=baseline, data=data, fmt=fmt, force=force, progress=_progress(not as_json))
    if as_json:
        print_json(s)
        return
    h = s["headline"]
    table = Table(title=f"{s['model']}: {s['method']} on {s['n']} samples (mean over {', '.join(s['targets'])})")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("issue target (trained gazenet)")
    c = s["criteria"]
    mark = {True: "met", False: "missed", None: "n/a"}
    table.add_row("eye-mass share / area share", f"{_f(h['eye_mass_share'])} / {_f(h['eye_area_share'])}", "")
    table.add_row("eye-mass ratio", _f(h["eye_mass_ratio"]), f">= 3: {mark[c['eye_mass_ratio >= 3']]}")
    table.add_row("pointing game", _f(h["pointing"]), f">= 0.8: {mark[c['pointing >= 0.8']]}")
    table.add_row("randomization Spearman (all layers)", _f(h["randomization_spearman"]),
                  f"< 0.2: {mark[c['randomization_spearman < 0.2']]}")
    table.add_row("  floor: two random models", _f(h["randomization_floor"]), "")
    table.add_row("  signed maps (floor)", f"{_f(h['randomization_spearman_signed'])} ({_f(h['randomization_floor_signed'])})", "")
    table.add_row(f"deletion area ({h['deletion_metric']})", f"{_f(h['deletion_area'])} vs random {_f(h['deletion_area_random'])}",
                  f"clearly worse: {mark[c['deletion clearly worse than random']]}")
    ab = s.get("region_ablation")
    if ab:
        table.add_row(f"{ab['metric']}: intact / eyes removed", f"{_f(ab['nothing_removed'])} / {_f(ab['eyes_removed'])}", "")
        table.add_row("  all but the eyes removed / all removed", f"{_f(ab['rest_removed'])} / {_f(ab['all_removed'])}",
                      "")
    console.print(table)
    console.print(f"data: {s['data'].get('label', s['data'].get('source'))}", highlight=False)
    if s.get("eye_mass_note"):
        console.print(s["eye_mass_note"], highlight=False)
    steps_table = Table(title="cascading randomization (Spearman of |maps|, signed in brackets)")
    steps_table.add_column("layers re-initialized")
    steps_table.add_column("down to")
    for t in s["targets"]:
        steps_table.add_column(t, justify="right")
    rows = s["randomization"]
    for k, row in enumerate(rows[s["targets"][0]]):
        cells = [f"{_f(rows[t][k]['spearman_abs'], '.2f')} ({_f(rows[t][k]['spearman'], '.2f')})" for t in s["targets"]]
        steps_table.add_row(f"{row['layers_reinitialized']}/{row['of']}", row["down_to"], *cells)
    console.print(steps_table)
    _wrote(s, out)


def embeddings_cmd(
    run: Annotated[str, typer.Argument(help=SPEC_HELP)],
    layer: Annotated[str | None, typer.Option("--layer", help="Layer NAME (its output) or NAME:input.")] = None,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="List the layers and the default, then stop.")] = False,
    n: Annotated[int, typer.Option("--n", help="Samples.")] = 512,
    batch_size: BatchOption = 64,
    data: DataOption = "val",
    fmt: FormatOption = None,
    out: OutOption = None,
    force: ForceOption = False,
    task: TaskOption = None,
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Collect a layer's embeddings: PCA by yaw/pitch, participation ratio, subject-held-out ridge probe."""
    from workbench.analyze import embeddings

    if list_layers and layer:
        fail("--layer and --list-layers contradict each other")
    out = out or _default_out(run, "embeddings")
    with model_run(run, task=task, weights=weights, data=data, fmt=fmt) as folder:
        s = embeddings(str(folder), layer=layer, out=None if list_layers else out, n=n, list_layers=list_layers,
                       batch_size=batch_size, data=data, fmt=fmt, force=force, progress=_progress(not as_json))
    if as_json:
        print_json(s)
        return
    if list_layers:
        table = Table(title=f"{s['model']}: layers in forward order (default: {s['default']})")
        for col in ("name", "type", "input shape", "output shape"):
            table.add_column(col)
        for r in s["layers"]:
            table.add_row(r["name"], r["type"], str(r["input_shape"]), str(r["output_shape"]))
        console.print(table)
        return
    rows = [("participation ratio", _f(s["participation_ratio"])), ("effective rank", _f(s["effective_rank"])),
            ("PCs for 90% variance", str(s["pcs_for_90"]))]
    rows += [(f"probe R2 {k}", _f(v)) for k, v in s["probe"]["r2"].items()]
    print_key_values(f"{s['model']}: {s['layer']} ({s['dim']}-d, {s['n']} samples)",
                     rows + [("probe split", s["probe"]["split"])], key="measure")
    _wrote(s, out)


def fc_importance_cmd(
    run: Annotated[str, typer.Argument(help=SPEC_HELP)],
    layer: Annotated[str | None, typer.Option("--layer", help="One Linear layer (default: every one).")] = None,
    n: Annotated[int, typer.Option("--n", help="Samples.")] = 256,
    max_ablate: Annotated[int, typer.Option("--max-ablate", help="Units ablated per layer at most (a seeded sample).")] = 32,
    conductance_samples: Annotated[int, typer.Option("--conductance-samples")] = 64,
    conductance_steps: Annotated[int, typer.Option("--conductance-steps")] = 16,
    batch_size: BatchOption = 32,
    data: DataOption = "val",
    fmt: FormatOption = None,
    out: OutOption = None,
    force: ForceOption = False,
    task: TaskOption = None,
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per-unit importance of the Linear layers (six criteria), their agreement, fc_importance.json."""
    from workbench.analyze import fc_importance

    out = out or _default_out(run, "fc-importance")
    with model_run(run, task=task, weights=weights, data=data, fmt=fmt) as folder:
        s = fc_importance(str(folder), layer=layer, out=out, n=n, max_ablate=max_ablate,
                          conductance_samples=conductance_samples, conductance_steps=conductance_steps,
                          batch_size=batch_size, data=data, fmt=fmt, force=force, progress=_progress(not as_json))
    if as_json:
        print_json(s)
        return
    table = Table(title=f"{s['model']}: share of units holding 90% of the importance ({s['metric']} {s['metric_base']:.4g})")
    table.add_column("layer")
    table.add_column("units", justify="right")
    for c in s["criteria"]:
        table.add_column(c, justify="right")
    for name, lay in s["layers"].items():
        table.add_row(name + (" (head)" if lay["is_head"] else ""), str(lay["out_features"]),
                      *(_f(lay["share_for_90"][c], ".2f") for c in s["criteria"]))
    console.print(table)
    for name, lay in s["layers"].items():
        for note in lay["notes"]:
            console.print(f"{name}: {note}")
    _wrote(s, out)


def register(app: typer.Typer) -> None:
    """Add `workbench analyze ...` to the top-level app."""
    sub.command("saliency")(user_errors(saliency_cmd))
    sub.command("check")(user_errors(check_cmd))
    sub.command("embeddings")(user_errors(embeddings_cmd))
    sub.command("fc-importance")(user_errors(fc_importance_cmd))
    app.add_typer(sub, name="analyze")


__all__ = ["register"]
