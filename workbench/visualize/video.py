"""Writing frames (a folder of PNGs, or an MP4) and reading videos and cameras, through OpenCV.

OpenCV (``opencv-python-headless``, or ``opencv-python`` for a live window) is imported only when a
video is written or read; a missing package or encoder is a one-line WorkbenchError, never a crash.
MP4s use the ``mp4v`` (MPEG-4 part 2) encoder that OpenCV's wheels ship with.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.utils.io import atomic_path, ensure_new_dir
from workbench.visualize.draw import BG, even

VIDEO_SUFFIXES = (".mp4",)
_REFUSED = (".avi", ".mov", ".mkv", ".webm", ".gif", ".png", ".jpg", ".jpeg")


def cv2_module() -> Any:
    """OpenCV, or a clear error naming the package to install."""
    try:
        import cv2
    except ImportError:
        raise WorkbenchError("video needs OpenCV: pip install opencv-python-headless (or opencv-python for a "
                             "live window)") from None
    return cv2


def is_video_path(out: str | Path) -> bool:
    """True for an ``.mp4`` output; other video/image suffixes are refused (a folder has none)."""
    suffix = Path(out).suffix.lower()
    if suffix in _REFUSED:
        raise WorkbenchError(f"{out}: expected a folder (PNG frames) or a .mp4 file, got a {suffix} file name")
    return suffix in VIDEO_SUFFIXES


def check_output(out: str | Path, *, force: bool = False) -> bool:
    """Refuse an output that cannot be written (bad suffix, or existing without ``force``); True for a video."""
    out = Path(out)
    if is_video_path(out):
        if out.is_dir():
            raise WorkbenchError(f"{out}: is a folder, expected a .mp4 file name")
        if out.exists() and not force:
            raise WorkbenchError(f"{out}: exists (use --force to replace it)")
        return True
    ensure_new_dir(out, force=force)
    return False


def check_fps(fps: float, what: str = "frame rate") -> float:
    """``fps`` as a float if it is a positive, finite frame rate; a WorkbenchError otherwise (OpenCV's MP4
    writer never returns from an infinite one)."""
    value = float(fps)
    if not (value > 0 and math.isfinite(value)):
        raise WorkbenchError(f"{what} must be a positive, finite number, got {fps}")
    return value


class FrameWriter:
    """Writes PIL frames to ``out``: a new folder of ``frame_00000.png``... or one ``.mp4`` file.

    Nothing appears at ``out`` until :meth:`close` succeeds (frames go to a temporary path that is then
    renamed), so an error or Ctrl-C leaves no half-written output. Every frame takes the first frame's
    size (smaller frames are padded, larger ones cropped) because a video has one frame size.

        with FrameWriter("vis.mp4", fps=2) as w:
            w.write(image)
    """

    def __init__(self, out: str | Path, *, fps: float = 2.0, force: bool = False) -> None:
        self.out = Path(out)
        self.video = check_output(self.out, force=force)
        self.fps = check_fps(fps)
        if self.video:
            self._cv2 = cv2_module()
        self._stack = contextlib.ExitStack()
        self._tmp: Path | None = None
        self._writer: Any = None
        self.size: tuple[int, int] | None = None
        self.count = 0

    def __enter__(self) -> FrameWriter:  # noqa: PYI034 (Python 3.10 has no typing.Self)
        self._tmp = self._stack.enter_context(atomic_path(self.out))
        if not self.video:
            self._tmp.mkdir()
        return self

    def write(self, frame: Image.Image) -> None:
        if self._tmp is None:
            raise RuntimeError("FrameWriter.write outside its with-block")
        frame = frame.convert("RGB")
        if self.size is None:
            frame = even(frame)
            self.size = frame.size
        elif frame.size != self.size:
            fitted = Image.new("RGB", self.size, BG)
            fitted.paste(frame, (0, 0))
            frame = fitted
        if self.video:
            if self._writer is None:
                cv2 = self._cv2
                self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
                if not self._writer.isOpened():
                    raise WorkbenchError(f"{self.out}: this OpenCV build cannot encode MP4 (no 'mp4v' encoder); "
                                         "install opencv-python-headless, or write PNG frames to a folder")
            self._writer.write(np.ascontiguousarray(np.asarray(frame)[:, :, ::-1]))
        else:
            frame.save(self._tmp / f"frame_{self.count:05d}.png")
        self.count += 1

    def paths(self) -> list[Path]:
        """The files written (valid after the with-block)."""
        if self.video:
            return [self.out]
        return [self.out / f"frame_{k:05d}.png" for k in range(self.count)]

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.release()
        if exc_type is None and self.count == 0:
            err = WorkbenchError(f"{self.out}: no frames to write")
            self._stack.__exit__(WorkbenchError, err, None)  # removes the temporary output
            raise err
        self._stack.__exit__(exc_type, exc, tb)


def open_capture(source: str | int) -> Any:
    """An OpenCV capture of a camera index (``0``, ``"1"``) or a video file; a clear error when it fails."""
    cv2 = cv2_module()
    is_camera = isinstance(source, int) or str(source).isdigit()
    if not is_camera and not Path(str(source)).is_file():
        raise WorkbenchError(f"{source}: no such video file (or give a camera index such as 0)")
    cap = cv2.VideoCapture(int(source) if is_camera else str(source))
    if not cap.isOpened():
        what = f"camera {source}" if is_camera else f"{source}: cannot decode this video"
        raise WorkbenchError(f"{what} could not be opened" if is_camera else what)
    return cap


def read_frames(source: str | int, limit: int | None = None) -> Iterator[np.ndarray]:
    """Frames of a video file or camera as (H, W, 3) uint8 RGB arrays."""
    cap = open_capture(source)
    try:
        k = 0
        while limit is None or k < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            k += 1
            yield np.ascontiguousarray(bgr[:, :, ::-1])
    finally:
        cap.release()


def video_info(source: str | int) -> dict[str, float]:
    """{"frames": count (-1 for a camera or unknown), "fps": frames per second (0 if unknown)}."""
    cv2 = cv2_module()
    cap = open_capture(source)
    try:
        return {"frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1), "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0)}
    finally:
        cap.release()
