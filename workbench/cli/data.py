"""`workbench data ...`: render SynthGaze into any of the write-ups' layouts, and inspect a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from workbench.cli._common import console, fail, print_json, progress_bar, user_errors

app = typer.Typer(help="Render SynthGaze into the write-ups' data layouts; inspect a data set.", no_args_is_help=True)


def _parse_size(view: str, size: Optional[str]):
    if size is None:
        return None
    try:
        if "x" in size.lower():
            w, h = (int(v) for v in size.lower().split("x"))
            return (w, h) if view == "frame" else fail(f"--size WxH is for the frame view; use one integer for {view!r}")
        value = int(size)
    except ValueError:
        fail(f"--size expects an integer or WxH, got {size!r}")
    if view == "frame":
        fail(f"the frame view expects --size WxH (e.g. 480x270), got {size!r}")
    return value


@app.command("synth")
@user_errors
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write (must not exist or be empty, unless --force)."),
    view: Optional[str] = typer.Option(None, "--view", help="face, mc4, itracker, frame or track (default: the format's view)."),
    fmt: str = typer.Option("npz", "--format", help="npz, mpiifacegaze, mpiifacegaze-pre, mc4, evg, itracker, gazecapture or lam."),
    n: int = typer.Option(256, "--n", help="Number of samples."),
    subjects: int = typer.Option(15, "--subjects", help="Number of subjects (ids 0..K-1)."),
    seed: int = typer.Option(0, "--seed"),
    size: Optional[str] = typer.Option(None, "--size", help="Image size: an integer, or WxH for frames."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of a table."),
) -> None:
    """Render N SynthGaze samples and write them in a data layout, with a progress bar."""
    from workbench.data import formats
    from workbench.data.synth import VIEWS, render
    from workbench.utils.io import atomic_path, ensure_new_dir

    if fmt not in formats.VIEW_OF_FORMAT:
        fail(f"unknown format {fmt!r}; expected one of {', '.join(formats.VIEW_OF_FORMAT)}")
    fmt_view = formats.VIEW_OF_FORMAT[fmt]
    if view is None:
        view = fmt_view or "face"
    if view not in VIEWS:
        fail(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    if fmt_view is not None and fmt_view != view:
        fail(f"format {fmt!r} holds the {fmt_view!r} view, not {view!r}")
    parsed_size = _parse_size(view, size)
    ensure_new_dir(out, force=force)
    with progress_bar(f"rendering {view}", n, enabled=not as_json) as advance:
        data = render(view, n, seed=seed, subjects=subjects, size=parsed_size, progress=advance)
    if fmt == "evg":
        path = _write_evg_splits(formats, data, out, force)
    elif fmt == "npz":
        # Every layout is a folder; an npz data set is the folder holding data.npz.
        with atomic_path(out) as tmp:
            formats.write(fmt, data, tmp / "data.npz")
        path = out
    else:
        path = formats.write(fmt, data, out, overwrite=force)
    summary = {"out": str(path), "format": fmt, "view": view, "samples": n, "subjects": subjects, "seed": seed}
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {n} {view} samples ({fmt}) to [bold]{path}[/bold]")


def _write_evg_splits(formats, data: dict, out: Path, force: bool) -> Path:
    """EVG keeps one annotation file per split: hold out the last fifth of the subjects as `val`."""
    import numpy as np

    ids = np.unique(data["subject"])
    held = ids[-max(1, len(ids) // 5):] if len(ids) > 1 else ids[:0]
    is_val = np.isin(data["subject"], held)
    path = formats.write("evg", {k: v[~is_val] for k, v in data.items()}, out, split="train", overwrite=force)
    if is_val.any():
        formats.write("evg", {k: v[is_val] for k, v in data.items()}, out, split="val")
    return path


def _summary_table(summary: dict) -> Table:
    table = Table(title=f"{summary['view']} data: {summary['samples']} samples, {summary['subjects']['count']} subjects")
    table.add_column("field")
    table.add_column("shape")
    table.add_column("min")
    table.add_column("max")
    table.add_column("mean")
    for key, shape in summary["images"].items():
        table.add_row(key, "x".join(map(str, shape)), "", "", "image")
    def fmt(vals: list) -> str:
        shown = ", ".join("nan" if v is None else f"{v:.3g}" for v in vals[:4])
        return shown + (", ..." if len(vals) > 4 else "")

    for key, lab in summary["labels"].items():
        shape = "x".join(map(str, lab["shape"])) or "1"
        if lab["missing"] == summary["samples"]:
            table.add_row(key, shape, "", "", "not stored")
            continue
        note = f" ({lab['missing']} missing)" if lab["missing"] else ""
        table.add_row(key + note, shape, fmt(lab["min"]), fmt(lab["max"]), fmt(lab["mean"]))
    return table


@app.command("inspect")
@user_errors
def inspect(
    path: Path = typer.Argument(..., help="A data folder in any supported layout (or an .npz file)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Layout (default: detected from the files)."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to read for layouts that have splits (evg, itracker, gazecapture)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to save the grid PNG (default: ./<name>_grid.png, "
                                       "replaced on each run)."),
    n: int = typer.Option(16, "--n", help="Samples in the grid."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarize a data set (counts, subjects, label ranges) and save a grid of samples with the gaze drawn."""
    from workbench.data import formats
    from workbench.data.inspect import draw_grid, summarize

    if not path.exists():
        fail(f"{path}: no such file or folder")
    if out is not None and out.is_dir():
        fail(f"{out}: is a folder; --out names the grid PNG file")
    if out is not None and out.exists() and not force:
        fail(f"{out}: exists (use --force to replace it)")
    fmt = fmt or formats.detect_format(path)
    kwargs = {"split": split} if split else {}
    data = formats.read(fmt, path, **kwargs)
    view = formats.VIEW_OF_FORMAT.get(fmt)
    summary = summarize(data, view)
    summary["format"] = fmt
    summary["path"] = str(path)
    grid = out or Path.cwd() / f"{path.name.replace('.npz', '')}_grid.png"
    summary["grid"] = str(draw_grid(data, grid, view=summary["view"], n=n))
    if as_json:
        print_json(summary)
        return
    console.print(_summary_table(summary))
    ids = summary["subjects"]["ids"]
    console.print(f"subjects: {ids}{' ...' if summary['subjects']['count'] > len(ids) else ''}")
    if "counts" in summary:
        console.print("read: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    console.print(f"grid of {min(n, summary['samples'])} samples: [bold]{summary['grid']}[/bold]")
