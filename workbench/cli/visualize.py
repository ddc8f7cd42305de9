"""`workbench visualize | live`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from workbench.cli._common import (TaskOption, WeightsOption, console, err_console, model_run, print_json,
    progress_bar, user_errors)
from workbench.visualize.video import check_fps


def visualize_cmd(
    runs: list[str] = typer.Argument(..., metavar="MODEL...", help="Run folder(s) of one task, or model specs (a "
                                     "name, or package.module:factory with --task): several are drawn side by side."),
    out: Path = typer.Option(..., "--out", help="A new folder of PNG frames, or a .mp4 file."),
    data: str = typer.Option("val", "--data", help="'val' (default: the run's own validation split, the data it "
                             "was trained on), 'train', 'synth' (fresh SynthGaze of held-out subjects), or a data set "
                             "path. Samples are drawn across subjects."),
    fmt: str | None = typer.Option(None, "--format", help="Layout of --data (default: detected)."),
    n: int = typer.Option(8, "--n", help="Samples to draw (one frame each)."),
    which: str = typer.Option("best", "--checkpoint", help="best or last."),
    fps: float = typer.Option(2.0, "--fps", help="Frames per second of an MP4."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    task: str | None = typer.Option(None, "--task", help="Task of the package.module:factory models."),
    weights: WeightsOption = None,
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda[:N]: where the predictions are computed."),
    as_json: bool = typer.Option(False, "--json", help="Print the written files as JSON (no progress bar)."),
    images: Path | None = typer.Option(None, "--images", help="Photos instead of --data: a folder, an image or a "
                                       "video; predictions drawn back on the original frames."),
    detector: str | None = typer.Option(None, "--detector", help="With --images: package.module:Class."),
) -> None:
    """Draw ground truth (green) and prediction (red) of each run, sample by sample, as PNGs or an MP4."""
    from workbench.visualize import visualize
    from workbench.visualize.video import check_output

    from workbench.modelspec import resolve_device

    check_output(out, force=force)  # a bad output name fails before any progress bar
    resolve_device(device)  # so does a missing device
    if images is not None:
        from workbench.cli._images import visualize_images_cmd

        with contextlib.ExitStack() as stack:
            folders = [stack.enter_context(model_run(r, task=task, weights=weights, device=device)) for r in runs]
            return visualize_images_cmd(folders, images, out, which=which, fps=fps, force=force, detector=detector,
                                        as_json=as_json)
    check_fps(fps, "--fps")
    with contextlib.ExitStack() as stack:
        # The runs are opened (and refused) before the progress bar starts.
        folders = [stack.enter_context(model_run(r, task=task, weights=weights, data=data, fmt=fmt, device=device))
                   for r in runs]
        advance = stack.enter_context(progress_bar("drawing", n, enabled=not as_json))
        paths = visualize([str(f) for f in folders], out, data=data, fmt=fmt, n=n, which=which, fps=fps, force=force,
                          progress=advance, device=device)
    if as_json:
        print_json({"out": str(out), "files": [str(p) for p in paths]})
        return
    what = f"{len(paths)} PNG frames" if out.suffix.lower() != ".mp4" else "an MP4"
    console.print(f"wrote {what} to {out}", markup=False)


def live_cmd(
    run: str = typer.Argument(..., metavar="MODEL", help="Run folder (a full-frame evg model is the main use), or a "
                              "model spec: a name, or package.module:factory with --task and --weights."),
    source: str = typer.Option("0", "--source", help="Camera index (0, 1...) or a video file."),
    out: Path | None = typer.Option(None, "--out", help="Write annotated frames (a new folder, or a .mp4) "
                                       "instead of showing a window."),
    ref: int | None = typer.Option(None, "--ref", help="Reference point 1-9 on the 3x3 screen grid (default with "
                                      "--out: cycle through them)."),
    cycle: int = typer.Option(30, "--cycle", help="With --out and no --ref: frames per reference point."),
    frames: int | None = typer.Option(None, "--frames", help="Stop after this many frames."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of a written MP4 (default: the source's)."),
    which: str = typer.Option("best", "--checkpoint", help="best or last."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    task: TaskOption = None,
    weights: WeightsOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (no progress bar)."),
    detector: str | None = typer.Option(None, "--detector", help="Face detector package.module:Class (default: "
                                        "OpenCV's cascades)."),
) -> None:
    """Run a model on a camera or video, the prediction drawn on each frame (keys 1-9: reference points)."""
    from workbench.visualize import live
    from workbench.visualize.video import check_output, video_info

    if out is not None:
        check_output(out, force=force)
    if fps is not None:
        check_fps(fps, "--fps")
    total = frames
    if total is None and not source.isdigit():
        total = max(video_info(source)["frames"], 0)
    notes = err_console.print if not as_json else None
    with model_run(run, task=task, weights=weights) as folder, \
            progress_bar("live", total or 0, enabled=not as_json and out is not None and bool(total)) as advance:
        summary = live(str(folder), source=source, out=out, ref=ref, cycle=cycle, max_frames=frames, fps=fps, force=force,
                       which=which, on_note=(lambda s: notes(f"note: {s}", markup=False)) if notes else None,
                       progress=advance, detector=detector)
    summary = {k: v for k, v in summary.items() if k != "predictions"}
    if as_json:
        print_json(summary)
        return
    console.print(f"{summary['frames']} frames, model {summary['model_ms_per_frame']} ms per frame"
                  + (f"; wrote {out}" if out is not None else ""), markup=False)
    console.print(f"face found in {summary['faces_found']} frames, not found in {summary['faces_not_found']}",
                  markup=False)
    for key, e in summary["reference_errors_px"].items():
        console.print(f"  reference {key}: {e['frames']} frames, mean error x {e['dx_px']:+.0f} px, y {e['dy_px']:+.0f} px, "
                      f"Euclidean {e['error_px']:.0f} px", markup=False)


def register(app: typer.Typer) -> None:
    """Add `visualize` and `live` to the top-level app."""
    app.command("visualize")(user_errors(visualize_cmd))
    app.command("live")(user_errors(live_cmd))
