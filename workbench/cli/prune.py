"""`workbench prune`: iterative structural pruning of a run, fine-tuned through the training engine."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workbench.cli._common import (JsonOption, ModelSetsOption, PresetOption, TaskOption, WeightsOption, console,
    fail, model_run, print_json, user_errors)


def _parse_layers(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            fail(f"--layers expects NAME=FRACTION[,NAME=FRACTION], got {item!r}")
        if not sep or not name.strip():
            fail(f"--layers expects NAME=FRACTION[,NAME=FRACTION], got {item!r}")
    return out


def prune_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help="A trained run folder, or a teacher/student name or "
                              "package.module:factory (with --task, --weights): fine-tuned on SynthGaze."),
    out: Path = typer.Option(..., "--out", help="The pruned run folder to write."),
    target_macs: float | None = typer.Option(None, "--target-macs", help="Keep this ratio of the MACs (0.5 = half)."),
    target_params: float | None = typer.Option(None, "--target-params", help="Keep this ratio of the parameters."),
    target_latency: float | None = typer.Option(None, "--target-latency", help="Keep this ratio of the model's "
                                                "onnxruntime time (one thread, --latency-batch), predicted from a "
                                                "per-layer-group latency table measured first; the result is timed "
                                                "for real. With --scope global, units that save time go first."),
    latency_batch: int = typer.Option(1, "--latency-batch", help="Batch size the latency is measured at."),
    layers: str | None = typer.Option(None, "--layers",
                                         help="Prune only these layer groups to a kept fraction, e.g. lstm=0.5."),
    importance: str = typer.Option("taylor", "--importance", help="taylor (the default; it measured best in "
                                   "benchmarks/analysis_links.py), magnitude, lamp, rank or fc:FILE "
                                   "(an fc_importance.json for the Linear layers; magnitude elsewhere). lamp "
                                   "ranks like magnitude within a layer, so it differs only with --scope global. "
                                   "rank (HRank): a conv channel's mean feature-map rank on the --calib-samples, "
                                   "a Linear/LSTM unit's activation variance; dead channels go first."),
    scope: str = typer.Option("local", "--scope", help="local: every layer group loses the same fraction of its "
                              "channels; global: one ranking over all channels; erank: each group keeps a share "
                              "proportional to the effective rank (--erank-measure) of its output on the "
                              "--calib-samples, one factor for all groups sized to the target, so redundant "
                              "layers shrink most (recorded per group in metrics.json 'erank')."),
    steps: int = typer.Option(3, "--steps", help="Prune-then-fine-tune rounds."),
    round_to: int = typer.Option(8, "--round-to", help="Kept widths are multiples of this in every group of at "
                                 "least twice as many channels (runtimes pack channels in blocks; odd widths cost "
                                 "time); 1 keeps any width."),
    finetune_epochs: int = typer.Option(1, "--finetune-epochs", help="Fine-tuning epochs after each step (0: none)."),
    final_epochs: int | None = typer.Option(None, "--final-epochs", help="Fine-tuning epochs after the last "
                                            "step (default: --finetune-epochs)."),
    finetune_samples: int | None = typer.Option(None, "--finetune-samples",
                                                   help="Training samples per fine-tune (default: the run's n_train)."),
    lr: float | None = typer.Option(None, "--lr", help="Fine-tuning learning rate (default: 0.1x the run's)."),
    calib_samples: int = typer.Option(512, "--calib-samples", help="Training samples that re-estimate BatchNorm "
                                      "statistics after each step (and give Taylor gradients, rank scores and "
                                      "the erank effective ranks)."),
    erank_measure: str = typer.Option("entropy", "--erank-measure", help="With --scope erank: entropy (Roy & "
                                      "Vetterli's effective rank) or pr (participation ratio: only the dominant "
                                      "directions, a much harsher cut)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the calibration draw and the fine-tuning "
                                    "(default: the run's)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N] (fine-tuning)."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    preset: PresetOption = None,
    model_sets: ModelSetsOption = [],
    as_json: JsonOption = False,
) -> None:
    """Prune RUN until its MACs (or params) are at most the target ratio; write a run folder."""
    from workbench.compress.prune import prune

    given = [n for n, v in (("--target-macs", target_macs), ("--target-params", target_params),
                            ("--target-latency", target_latency), ("--layers", layers)) if v is not None]
    if len(given) != 1:
        fail("give exactly one of --target-macs R, --target-params R, --target-latency R or --layers NAME=FRACTION, "
             f"got {given or 'none'}")
    with model_run(run, task=task, weights=weights, preset=preset, model_sets=model_sets, device=device) as folder:
        result = prune(folder, out, target_macs=target_macs, target_params=target_params, layers=_parse_layers(layers),
                       importance=importance, scope=scope, steps=steps, round_to=round_to,
                       target_latency=target_latency, latency_batch=latency_batch,
                       finetune_epochs=finetune_epochs,
                       final_epochs=final_epochs, finetune_samples=finetune_samples, lr=lr, calib_samples=calib_samples, seed=seed, erank_measure=erank_measure, force=force,
                       device=device, progress=not as_json)
    if as_json:
        print_json(result)
        return
    steps = f"{result['steps']} step" + ("s" if result["steps"] > 1 else "")
    rounding = f", widths multiples of {result['round_to']}" if result["round_to"] > 1 else ""
    table = Table(title=f"{result['teacher']} pruned ({result['importance']} importance, {result['scope']}, {steps}{rounding})")
    for col in ("", "before", "after", "ratio"):
        table.add_column(col, justify="left" if not col else "right")
    for key in ("macs", "params"):
        r = result[key]
        table.add_row("MACs" if key == "macs" else key, f"{r['before']:,}", f"{r['after']:,}", f"{r['ratio']:.3f}")
    pm = result["primary_metric"]
    t, p = result["teacher_metric"], result["best"]
    table.add_row(pm, f"{t:.4g}", f"{p:.4g}", f"{p / t:.3f}" if t else "")
    lat = result.get("latency")
    if lat:
        table.add_row(f"{lat['runtime']} ms, batch {lat['batch']}, {lat['threads']} thread", f"{lat['teacher_ms']:.3f}",
                      f"{lat['pruned_ms']:.3f}", f"{lat['pruned_ms'] / lat['teacher_ms']:.3f}")
    console.print(table)
    if result.get("erank"):
        _print_erank(result["erank"])
    if lat:
        cut = "n/a" if lat["cut_ratio"] is None else f"{lat['cut_ratio']:.2f}"
        console.print(f"latency ({lat['runtime']}, {lat['threads']} thread, batch {lat['batch']}): target "
                      f"{lat['target_ms']:.3f} ms, measured {lat['pruned_ms']:.3f} ms beside the original's "
                      f"{lat['teacher_ms']:.3f} ms ({lat['speedup']:.2f}x faster; {lat['models_timed']} models timed "
                      f"in the search); latency cut / MAC cut {cut}"
                      + (f"; per-group savings in {lat['table']}" if lat["table"] else ""), highlight=False)
    console.print(f"run folder: [bold]{result['run']}[/bold]")


def _print_erank(erank: dict, shown: int = 12) -> None:
    """The groups erank cut hardest: what analysis said (effective rank of width) beside what was kept."""
    rows = sorted(erank.items(), key=lambda kv: (kv[1]["keep"] / kv[1]["width"], kv[0]))
    table = Table(title="effective rank per layer group (kept share follows r / width)")
    for col in ("group", "effective rank", "width", "kept", "kept share"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for root, e in rows[:shown]:
        table.add_row(root, f"{e['effective_rank']:.1f}", str(e["width"]), str(e["keep"]),
                      f"{e['keep'] / e['width']:.2f}")
    console.print(table)
    if len(rows) > shown:
        console.print(f"({len(rows) - shown} more groups in metrics.json 'erank')", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `workbench prune`."""
    app.command("prune")(user_errors(prune_cmd))


__all__ = ["register"]
