"""Run folders and checkpoints.

A run folder holds everything one command produced::

    runs/<teacher>/<name>/
        config.json          the resolved training config (rebuilds the model and the data)
        log.jsonl            one JSON object per event (epoch, validation, stop, error)
        metrics.json         the final summary (best/final metrics, the constant predictor's)
        checkpoints/last.pt  weights + optimizer + schedule + epoch (for --resume)
        checkpoints/best.pt  weights of the best validation epoch

Checkpoints contain only tensors and plain containers (the model config is stored as a JSON string), so
they load with ``torch.load(..., weights_only=True)``: loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from workbench.errors import WorkbenchError
from workbench.utils.io import atomic_path
from workbench.utils.jsonio import read_json, read_jsonl

CHECKPOINT_FORMAT = "gaze-workbench/1"


class RunFolder:
    """One run's folder; created fresh (or re-opened for resume) and never overwritten silently."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # ---- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, *, force: bool = False) -> "RunFolder":
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            if not force:
                raise WorkbenchError(f"{run.path}: run folder exists (use --resume to continue it or --force to replace it)")
            import shutil

            shutil.rmtree(run.path)
        (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunFolder":
        run = cls(path)
        if not (run.path / "config.json").is_file():
            raise WorkbenchError(f"{run.path}: not a run folder (no config.json)")
        return run

    # ---- files -----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    def config(self) -> dict[str, Any]:
        """config.json, checked for the parts every command rebuilds the run from."""
        return read_run_config(self.config_path)

    def log(self, event: str, **fields: Any) -> None:
        """Append one JSON line to log.jsonl (flushed at once, so a killed run keeps its log)."""
        rec = {"time": round(time.time(), 3), "event": event, **fields}
        with open(self.path / "log.jsonl", "a+b") as f:
            # A line cut by a kill is ended first, so it cannot swallow this record.
            cut = False
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) != b"\n"
            f.write((b"\n" if cut else b"") + (json.dumps(rec, default=float) + "\n").encode())
            f.flush()

    def read_log(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / "log.jsonl")  # a line cut by a kill is skipped, the rest kept


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's config.json: a table with ``model`` (a table), ``task`` (a name) and ``recipe`` (a table);
    anything else (hand-edited, or another tool's file) is one line naming the file."""
    config = read_json(path)
    kinds = {"model": dict, "task": str, "recipe": dict}
    if not isinstance(config, dict) or any(not isinstance(config.get(k), t) for k, t in kinds.items()):
        raise WorkbenchError(f"{path}: not a run's config (expected a JSON object with model, task and recipe)")
    return config


def save_checkpoint(path: Path, *, model_state: dict, model_config: dict, extra: dict | None = None) -> None:
    """Write a checkpoint atomically: weights + the JSON config to rebuild the model (+ training state)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        "config": json.dumps(model_config, sort_keys=True),
    }
    if extra:
        payload.update(extra)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_failure(exc: Exception) -> str:
    """Why torch.load failed, as one whole clause (torch's own messages run to several sentences and, for
    weights_only, advise loading unsafely, which a user of this tool must not be told to do)."""
    import pickle

    text = " ".join(str(exc).split())
    if isinstance(exc, pickle.UnpicklingError) or text.startswith("Weights only load failed"):
        return "it is not a file of tensors and plain values (checkpoints are loaded with weights_only=True)"
    first = text.split(". ")[0].rstrip(".") or type(exc).__name__
    if "zip archive" in first or "central directory" in first:
        return f"the file is truncated or corrupt ({first[:160]})"
    return first[:200]


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing, corrupt or foreign file is a WorkbenchError."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise WorkbenchError(f"{path}: not a readable checkpoint: {load_failure(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "model" not in payload:
        raise WorkbenchError(f"{path}: not a Gaze Workbench checkpoint")
    try:
        payload["config"] = json.loads(payload["config"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise WorkbenchError(f"{path}: checkpoint has no valid model config") from None
    return payload
