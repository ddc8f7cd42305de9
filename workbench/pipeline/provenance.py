"""What produced a result: the command line, the package versions and the git commit."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "captum", "torch-pruning", "onnx", "onnxruntime", "calflops", "numpy", "matplotlib", "gaze-workbench")


def versions() -> dict[str, str]:
    """Python and the versions of the packages the results depend on ("not installed" when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: str | Path | None = None) -> dict[str, Any]:
    """The commit of the source tree (and whether it had uncommitted changes), or why it is unknown."""
    here = Path(path) if path else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=False)
        if commit.returncode != 0:
            return {"commit": None, "note": "not a git checkout"}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "note": "git not available"}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def command_line(argv: list[str] | None = None) -> str:
    """The command as the user typed it (``workbench ...``), shell-quoted."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("workbench", "__main__.py"):
        argv = ["workbench", *argv[1:]]
    return " ".join(shlex.quote(a) for a in argv)


def provenance(command: str | None = None) -> dict[str, Any]:
    return {"command": command or command_line(), "versions": versions(), "git": git_commit(),
            "platform": platform.platform()}
