"""What a latency figure was measured on: the CPU, its logical cores, the OS and the runtime versions.

Cheap (reads ``/proc/cpuinfo`` and package metadata; no timing, no network), so every benchmark records it
beside its numbers (issue 20): a millisecond figure without the machine it came from cannot be compared.

    >>> m = machine()
    >>> machine_text(m)
    'Intel(R) Xeon(R) Processor, 2 cores, Linux, onnxruntime 1.32.0, torch 2.13.0+cpu'
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["latency_setup_text", "machine", "machine_text", "runtime_version", "threads_text"]

# onnxruntime ships under several distribution names; the first one installed is the one imported.
_ORT_DISTS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


def _cpu_model() -> str:
    """The "model name" line of /proc/cpuinfo (Linux), else platform.processor(), else "unknown CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                name = line.split(":", 1)[1].strip()
                if name:
                    return " ".join(name.split())
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def runtime_version(name: str) -> str:
    """The installed version of ``name`` ("onnxruntime" or "torch"), or "not installed"."""
    for dist in _ORT_DISTS if name == "onnxruntime" else (name,):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine() -> dict[str, Any]:
    """{"cpu": model name, "cores": logical cores, "os": platform.system(), "onnxruntime": version, "torch": version}."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "os": platform.system() or "unknown OS",
            "onnxruntime": runtime_version("onnxruntime"), "torch": runtime_version("torch")}


def machine_text(m: Any) -> str:
    """One line of :func:`machine`'s dict; "machine not recorded" for None or anything but a dict (old runs),
    and "?" for a missing field."""
    if not isinstance(m, dict) or not m:
        return "machine not recorded"
    cores = m.get("cores")
    parts = [str(m.get("cpu") or "unknown CPU"), f"{cores if cores is not None else '?'} cores", str(m.get("os") or "?"),
             f"onnxruntime {m.get('onnxruntime') or '?'}", f"torch {m.get('torch') or '?'}"]
    return " ".join(", ".join(parts).split())  # one line, whatever the fields hold


def threads_text(threads: Any) -> str:
    """"1 thread", "2 threads"; "? threads" where the count was not recorded."""
    return "? threads" if threads is None else f"{threads} thread" + ("" if threads == 1 else "s")


def latency_setup_text(runtime: str, threads: Any, batches: Any, m: Any) -> str:
    """How a latency was measured, as the one line the CLI prints under its table:
    "latency: onnxruntime, 1 thread, batch 1 and 32, <machine_text(m)>". ``batches``: a size or several."""
    sizes = list(batches) if isinstance(batches, (list, tuple)) else [batches]
    b = " and ".join("?" if x is None else str(x) for x in sizes) or "?"
    return f"latency: {runtime}, {threads_text(threads)}, batch {b}, {machine_text(m)}"
