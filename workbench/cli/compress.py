"""`workbench compress`: the most accurate model the workbench can make under a latency, MACs or params budget."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workbench.cli._common import JsonOption, console, err_console, fail, macs_text, print_json, user_errors


def _list(text: str, what: str, cast=str) -> list:
    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what} expects a comma-separated list, got {text!r}")
    if not items:
        fail(f"{what} expects a comma-separated list, got {text!r}")
    return items


def compress_cmd(
    run: Path = typer.Argument(..., metavar="RUN", help="A trained run folder (the teacher)."),
    out: Path = typer.Option(..., "--out", help="The folder to write: candidates/, front.json/.csv/.png, "
                             "summary.json, best/."),
    latency_ms: float | None = typer.Option(None, "--latency-ms", help="Budget: ms per batch of --batch on "
                                            "onnxruntime, one thread, as measured here."),
    speedup: float | None = typer.Option(None, "--speedup", help="Budget: F times faster than the teacher, i.e. "
                                         "--latency-ms = the teacher's time / F, both timed here in one loop."),
    macs: float | None = typer.Option(None, "--macs", help="Budget: MACs of one sample."),
    params: float | None = typer.Option(None, "--params", help="Budget: parameters."),
    budget_x: float | None = typer.Option(None, "--budget-x", help="Compute budget: this many times the teacher's "
                                          "recorded training time (default 3)."),
    budget_minutes: float | None = typer.Option(None, "--budget-minutes", help="Compute budget in minutes of wall "
                                                "time (instead of --budget-x)."),
    eta: int = typer.Option(2, "--eta", help="Successive halving: the best 1/eta of each rung go on, training eta "
                            "times longer."),
    rung_epochs: float = typer.Option(1.0, "--rung-epochs", help="Epochs every candidate trains in rung 0 (below 1: "
                                      "one pass over that share of the SynthGaze training samples)."),
    batch: int = typer.Option(1, "--batch", help="Batch size the latency is measured at."),
    repeats: int = typer.Option(50, "--repeats", help="Timed rounds per model."),
    candidates: str = typer.Option("prune,student,int8", "--candidates", help="Kinds of candidates: prune "
                                   "(the teacher pruned to --ratios of its MACs), student (every registered student "
                                   "of the task at each preset), int8 (of each). The teacher is always one."),
    ratios: str = typer.Option("0.7,0.5,0.35,0.25", "--ratios", help="MACs ratios of the pruned teachers (params "
                               "ratios under --params; a MACs or params budget adds the ratio that meets it exactly)."),
    max_candidates: int | None = typer.Option(None, "--max-candidates", help="Build at most this many fp32 "
                                              "candidates (pruned and students alternating)."),
    final: bool = typer.Option(True, "--final/--no-final", help="When one candidate is left with compute budget "
                               "to spare, train it on with the time left (learning rate decaying)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N] (training)."),
    as_json: JsonOption = False,
) -> None:
    """Search pruned teachers, students and int8 versions for the most accurate model under a budget; train them
    by successive halving within a compute budget; write the Pareto front (error vs measured latency)."""
    from workbench.compress.search import compress

    kinds = _list(candidates, "--candidates")
    ladder = _list(ratios, "--ratios", float)
    # Stage lines beside the progress bars, on a terminal only (like the bars): stderr stays one line on errors.
    quiet = as_json or not err_console.is_terminal
    log = (lambda line: None) if quiet else (lambda line: err_console.print(line, markup=False, highlight=False))
    result = compress(run, out, latency_ms=latency_ms, speedup=speedup, macs=macs, params=params, budget_x=budget_x,
                      budget_minutes=budget_minutes, eta=eta, rung_epochs=rung_epochs, batch=batch, repeats=repeats,
                      kinds=kinds, ratios=ladder, max_candidates=max_candidates, final=final, force=force, device=device,
                      progress=not as_json, log=log)
    s = result.summary
    if as_json:
        print_json(s)
        return
    b, budget, lat, comp = s["best"], s["budget"], s["latency"], s["compute"]
    table = Table(title=f"Pareto front: {s['error']} vs latency ({lat['runtime']}, {lat['threads']} thread, "
                        f"batch {lat['batch']}); budget {budget['value']:g} {budget['unit']}")
    for col in ("candidate", "kind", "MACs", "ms", "error", "rung", "fits"):
        table.add_column(col, justify="left" if col in ("candidate", "kind") else "right", no_wrap=True)
    for c in sorted((c for c in result.candidates if c.on_front), key=lambda c: c.latency_ms):
        table.add_row(c.name + (" *" if c.name == b["name"] else ""), c.kind, macs_text(c.macs), f"{c.latency_ms:.3f}",
                      f"{c.error:.4g}", "-" if c.rung is None else str(c.rung), "yes" if c.under_budget else "no")
    console.print(table)
    value = (f"{b['latency_ms']:.3f} ms" if budget["kind"] == "latency_ms" else
             f"{b[budget['kind']]:,} {budget['unit']}")
    console.print(f"best under {budget['value']:g} {budget['unit']}: [bold]{b['name']}[/bold] ({b['kind']}), "
                  f"{s['error']} {b['error']:.4g} ({b['error_vs_teacher']:.2f}x the teacher's), {value}; compute "
                  f"{comp['used_s']:.0f} s of {comp['budget_s']:.0f} s ({comp['stated']}; {comp['stopped']}); "
                  f"{s['candidates']} candidates in {s['run']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `workbench compress`."""
    app.command("compress")(user_errors(compress_cmd))


__all__ = ["register"]
