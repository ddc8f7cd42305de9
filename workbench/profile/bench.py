"""Latency and throughput: PyTorch eager and onnxruntime, warm-up, median and p90, threads set explicitly.

Each (backend, batch size) cell runs ``warmup`` untimed calls, then ``repeats`` timed calls of one
forward pass each (``time.perf_counter`` around the call; eager under ``torch.inference_mode``).
PyTorch uses ``torch.set_num_threads(threads)`` (restored afterwards); onnxruntime a session with
``intra_op_num_threads = threads``, one inter-op thread, sequential execution, all graph
optimizations. Inputs are a real batch repeated to each batch size.

``device`` (auto, cpu, cuda[:N]) runs eager PyTorch there (CUDA timings synchronize around each call)
and gives onnxruntime the CUDA execution provider where it is installed (``workbench.modelspec``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.profile.export import export_onnx, onnx_session
from workbench.profile.inputs import call_args, repeat_batch
from workbench.profile.machine import machine

__all__ = ["benchmark", "benchmark_run"]

BACKENDS = ("eager", "onnxruntime")


def _stats(times_s: Sequence[float], batch: int) -> dict[str, float]:
    t = np.asarray(times_s) * 1e3
    med = float(np.median(t))
    return {"median_ms": med, "p90_ms": float(np.percentile(t, 90)), "mean_ms": float(t.mean()),
            "min_ms": float(t.min()), "items_per_s": batch / (med / 1e3) if med > 0 else float("inf"),
            "repeats": len(t)}


def _time(fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None] | None = None) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after ``warmup``; ``sync`` waits for queued GPU work."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append(time.perf_counter() - t0)
    return out


def benchmark(model_or_onnx_path: nn.Module | str | Path, inputs: Mapping[str, torch.Tensor], *,
              batch_sizes: Sequence[int] = (1, 32), threads: int = 2, warmup: int = 5, repeats: int = 30,
              backends: Sequence[str] = BACKENDS, progress: Callable[[int, str], None] | None = None,
              device: str = "cpu") -> dict[str, Any]:
    """Latency of ``model_or_onnx_path`` on ``inputs`` ({name: (B, ...)}) at each batch size.

    A model runs eager and, exported to a temporary ONNX file (parity-checked), in onnxruntime; an
    ``.onnx`` path runs in onnxruntime only. Returns {"eager"|"onnxruntime": {"batch_<n>": {median_ms,
    p90_ms, mean_ms, min_ms, items_per_s, repeats}}, threads, warmup, repeats, batch_sizes,
    input_shapes, device, machine (:func:`workbench.profile.machine.machine`), onnx_max_abs_diff,
    speedup_onnxruntime (eager median / onnxruntime median per batch)}.
    ``progress(k, status)`` is called after each cell; ``device`` is where both backends run.
    """
    from workbench.modelspec import ort_providers, resolve_device

    dev = resolve_device(device)
    providers = ort_providers(device) if "onnxruntime" in backends else None
    if threads < 1 or warmup < 0 or repeats < 1:
        raise WorkbenchError(f"expected threads >= 1, warmup >= 0, repeats >= 1; got {threads}, {warmup}, {repeats}")
    sizes = [int(b) for b in batch_sizes]
    if not sizes or min(sizes) < 1:
        raise WorkbenchError(f"expected positive batch sizes, got {list(batch_sizes)}")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise WorkbenchError(f"unknown backend {unknown[0]!r}; expected {', '.join(BACKENDS)}")
    is_path = isinstance(model_or_onnx_path, (str, Path))
    if is_path and "eager" in backends:
        backends = [b for b in backends if b != "eager"]
    out: dict[str, Any] = {"threads": threads, "warmup": warmup, "repeats": repeats, "batch_sizes": sizes,
                           "input_shapes": {k: list(v.shape[1:]) for k, v in inputs.items()}, "device": str(dev),
                           "machine": machine()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
            if "eager" in backends:
                model = model_or_onnx_path
                names, _ = call_args(model, inputs)
                was_training = model.training
                model.eval().to(dev)
                cells = {}
                try:
                    for b in sizes:
                        args = tuple(repeat_batch(inputs, b)[n].to(dev) for n in names)

                        def run(args: tuple = args) -> None:
                            with torch.inference_mode():
                                model(*args)

                        cells[f"batch_{b}"] = _stats(_time(run, warmup, repeats, sync), b)
                        if progress:
                            progress(1, f"eager batch {b}: {cells[f'batch_{b}']['median_ms']:.2f} ms")
                finally:
                    model.train(was_training).to("cpu")
                out["eager"] = cells
            if "onnxruntime" in backends:
                if is_path:
                    onnx_path = Path(model_or_onnx_path)
                    if not onnx_path.is_file():
                        raise WorkbenchError(f"{onnx_path}: no such ONNX file")
                else:
                    onnx_path = Path(tmp) / "model.onnx"
                    exp = export_onnx(model_or_onnx_path, repeat_batch(inputs, min(2, max(sizes))), onnx_path)
                    out["onnx_max_abs_diff"] = exp["max_abs_diff"]
                session = onnx_session(onnx_path, threads=threads, providers=providers)
                out["onnxruntime_providers"] = session.get_providers()
                feed_names = [i.name for i in session.get_inputs()]
                missing = [n for n in feed_names if n not in inputs]
                if missing:
                    raise WorkbenchError(f"{onnx_path}: the model needs inputs {missing}, got {list(inputs)}")
                for i in session.get_inputs():  # fixed dimensions must match (symbolic ones, e.g. batch, are free)
                    given = tuple(inputs[i.name].shape)
                    if len(i.shape) != len(given) or any(isinstance(d, int) and d != g
                                                         for d, g in zip(i.shape[1:], given[1:])):
                        raise WorkbenchError(f"{onnx_path}: input {i.name!r} has shape {list(i.shape)}, got "
                                             f"{list(given)} (check --input)")
                cells = {}
                for b in sizes:
                    batch = repeat_batch({n: inputs[n] for n in feed_names}, b)
                    feed = {k: v.numpy() for k, v in batch.items()}
                    cells[f"batch_{b}"] = _stats(_time(lambda feed=feed: session.run(None, feed), warmup, repeats), b)
                    if progress:
                        progress(1, f"onnxruntime batch {b}: {cells[f'batch_{b}']['median_ms']:.2f} ms")
                out["onnxruntime"] = cells
    finally:
        torch.set_num_threads(prev_threads)
    if "eager" in out and "onnxruntime" in out:
        out["speedup_onnxruntime"] = {k: out["eager"][k]["median_ms"] / out["onnxruntime"][k]["median_ms"]
                                      for k in out["eager"]}
    return out


def benchmark_run(run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`benchmark` of a run folder's model on a real batch of its own validation split."""
    from workbench.profile.target import resolve_target

    path = Path(run_dir)
    if not path.is_dir():
        raise WorkbenchError(f"{path}: no such run folder")
    t = resolve_target(str(path), batch=min(8, max(kwargs.get("batch_sizes", (1, 32)))))
    out = benchmark(t.model, t.inputs, **kwargs)
    out["target"] = t.label
    out["data"] = t.data
    return out
