"""The `--images DIR|FILE|VIDEO` halves of `predict`, `analyze saliency` and `visualize`: thin wrappers
that call :mod:`workbench.faces` and print what was done, faces found and not found included."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rich.table import Table

from workbench.cli._common import console, print_json


def _counts(summary: dict[str, Any]) -> None:
    """Faces found / not found, and the first frames without one: never silently dropped."""
    console.print(f"{summary['frames']} frame(s): face found in {summary['faces_found']}, not found in "
                  f"{summary['faces_not_found']}", markup=False)
    if summary["faces_not_found"]:
        shown = summary["frames_without_face"]
        more = summary["faces_not_found"] - len(shown)
        console.print("  no face: " + ", ".join(shown) + (f" and {more} more" if more > 0 else ""), markup=False)
    for note in summary.get("notes", []):
        console.print(f"note: {note}", markup=False)


def print_saliency_table(title: str, results: dict[str, dict[str, dict[str, Any]]], *, mean_abs: bool = False,
                         frames: bool = False) -> None:
    """The saliency summary's rows (target x input): eye-mass share, area share, ratio and pointing game, with
    the mean |attribution| (samples) or the frames with eyes (photos); "n/a" where there are no eye boxes."""
    columns = ["target", "input", *(["mean |attr|"] if mean_abs else []), "eye-mass", "area share", "ratio",
               "pointing", *(["frames with eyes"] if frames else [])]
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("target", "input") else "right")
    for t, rows in results.items():
        for name, r in rows.items():
            no_boxes = "eye_mass" in r  # the data has no eye boxes for this input: nothing to measure

            def f(key: str, r: dict[str, Any] = r, no_boxes: bool = no_boxes) -> str:
                return "n/a" if no_boxes or r.get(key) is None else format(r[key], ".3g")

            table.add_row(t, name, *([f("mean_abs_attribution")] if mean_abs else []), f("share"), f("area_share"),
                          f("ratio"), f("pointing"), *([str(r.get("frames_with_eyes", 0))] if frames else []))
    console.print(table)


def predict_images_cmd(run: Path, images: Path, out: Path, *, which: str, detector: str | None, as_json: bool) -> None:
    """`workbench predict RUN --images ... --out pred.csv`."""
    from workbench.faces.images import predict_images

    summary = predict_images(run, images, out, which=which, detector=detector)
    if as_json:
        print_json(summary)
        return
    _counts(summary)
    console.print(f"wrote {summary['frames']} rows to [bold]{summary['out']}[/bold]")


def saliency_images_cmd(run: str, images: Path, *, out: Path, progress: Callable, as_json: bool, **options: Any) -> None:
    """`workbench analyze saliency RUN --images ...`: the overlay on each original photo + summary.json."""
    from workbench.faces.explain import saliency_images

    summary = saliency_images(run, images, out=out, progress=progress, **options)
    if as_json:
        print_json(summary)
        return
    print_saliency_table(f"{summary['model']}: {summary['method']} on the faces of {summary['explained']} frame(s)",
                         summary["results"], frames=True)
    _counts(summary)
    console.print(f"wrote {len(summary.get('files', []))} files to [bold]{out}[/bold]")


def visualize_images_cmd(runs: list[Path], images: Path, out: Path, *, which: str, fps: float, force: bool,
                         detector: str | None, as_json: bool) -> None:
    """`workbench visualize RUN... --images ... --out DIR|FILE.mp4`: predictions drawn on the original frames."""
    from workbench.faces.draw import visualize_images

    summary = visualize_images([str(r) for r in runs], images, out, which=which, fps=fps, force=force,
                               detector=detector)
    if as_json:
        print_json({"out": str(out), **summary})
        return
    _counts(summary)
    console.print(f"wrote {len(summary['files'])} file(s) to {out}", markup=False)
