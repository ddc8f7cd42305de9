"""Post-training static int8 quantization of a run's model with onnxruntime, calibrated on its own data.

Steps: export the fp32 model to ONNX (dynamic batch, parity-checked by ``workbench.profile.export``) ->
onnxruntime's ``quant_pre_process`` (shape inference and graph optimization) -> ``quantize_static`` with
per-channel int8 weights and uint8 activations, calibrated (MinMax) on samples of the run's own
*training* split drawn across subjects (``workbench.train.data.draw``) -> evaluation of fp32 and int8 with onnxruntime over the run's
validation split (held-out subjects) with the task's own metrics -> latency at batch 1 of both, threads set
explicitly, after a warm-up, the two models timed in alternation so a load spike on a shared machine hits
both alike; the median is reported.

Candidates: both onnxruntime layouts, QDQ (QuantizeLinear/DequantizeLinear pairs that the runtime fuses
into integer kernels) and QOperator (QLinearConv, ...), each with every conv quantized and with the image
stems (convs over <= 4 input channels, e.g. RGB or grey) left in fp32: an int8 conv over 3 channels runs
as an im2col GEMM with K = 27, slower than onnxruntime's fp32 direct kernel. Models with grouped convs
that are not depthwise (ResNeXt) also get candidates with those left in fp32: onnxruntime's int8 grouped
convs are much slower than its fp32 ones, which can cost more than the dequantize/quantize pair around
each. Depthwise convs stay quantized: leaving them in fp32 puts a pair around every MobileNetV2 block.
How much each choice gains depends on the CPU: ``benchmarks/int8_kernels.py`` measures it (the ranges it
found are :data:`LAYER_KINDS`). The candidate fastest at batch 1 becomes ``model.int8.onnx``; every
candidate's latency is reported (``fmt`` restricts the layout).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.progress import progress_bar
from workbench.tasks import Task, TaskData
from workbench.utils.jsonio import write_json

__all__ = ["FORMATS", "LAYER_KINDS", "conv_kind", "grouped_convs", "latency", "layer_census", "onnx_metrics", "quantize",
           "quantize_onnx", "stem_convs"]

FORMATS = ("auto", "qdq", "qoperator")


def _calibration_data(task: Task, config: dict[str, Any], n: int) -> tuple[TaskData, dict[str, Any]]:
    """``n`` samples of the run's own training split, drawn across subjects (purpose "calibration"),
    and what they are (the data spec's description). SynthGaze renders only the split's first rows."""
    from workbench.train.data import draw, load_split, resolve_data

    spec = resolve_data("train", config)
    train, desc = load_split(task, config, spec, limit=max(4 * n, 256))
    picked = draw(train, n, "calibration", int(config.get("seed", 0)))
    return train.subset(picked), {**desc, "n": len(picked), "drawn_from": desc["n"]}


def onnx_feeds(task: Task, data: TaskData, names: list[str], batch_size: int) -> list[tuple[dict[str, np.ndarray], dict]]:
    """(onnxruntime feed, batch) per batch; the feed holds only the graph's inputs ``names``."""
    out = []
    for lo in range(0, len(data), batch_size):
        batch = data.batch(torch.arange(lo, min(lo + batch_size, len(data))))
        inputs = dict(zip(task.input_names, task.inputs(batch)))
        out.append(({k: inputs[k].numpy() for k in names}, batch))
    return out


class _Reader:
    """onnxruntime's CalibrationDataReader over prepared feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.feeds)


def _convs(path: Path) -> list[tuple[str, int, int, int]]:
    """(node name, input channels, output channels, groups) of every Conv node with a weight initializer."""
    import onnx

    model = onnx.load(str(path))
    weights = {w.name: list(w.dims) for w in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in weights:
            c_out, per_group = weights[node.input[1]][:2]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            out.append((node.name, per_group * group, c_out, group))
    return out


def stem_convs(path: Path) -> list[str]:
    """Names of the ungrouped Conv nodes over <= 4 input channels (image stems) in the ONNX model."""
    return [name for name, c_in, _, group in _convs(path) if group == 1 and c_in <= 4]


def grouped_convs(path: Path) -> list[str]:
    """Names of the Conv nodes :func:`conv_kind` calls "grouped conv" (grouped, not depthwise), e.g. ResNeXt's."""
    return [name for name, c_in, c_out, group in _convs(path) if conv_kind(c_in, c_out, group) == "grouped conv"]


# What onnxruntime's int8 kernels do with each kind of layer at batch 1 on one thread, measured by
# benchmarks/int8_kernels.py on two 2-core machines with AVX512-VNNI (an AMD EPYC, and an Intel Xeon that
# also has AMX); the ranges span both. Rerun it on another CPU.
LAYER_KINDS = {
    "dense conv, >= 64 channels in and out": "1.3-3.7x faster in int8 (3x3, or 1x1 of 256 channels: 2.2x and up)",
    "dense conv, < 64 channels in or out": "1.0-1.5x",
    "depthwise conv": "0.7-0.9x (slower in int8)",
    "grouped conv": "0.3-0.4x (much slower in int8; kept in fp32 where that is faster)",
    "conv-transpose": "stays fp32 (not quantized)",
    "fully connected": "1.9-2.4x",
    "recurrent": "stays fp32 (not quantized)",
}


def conv_kind(c_in: int, c_out: int, group: int) -> str:
    """The :data:`LAYER_KINDS` key of a Conv with these channels and groups."""
    if group > 1:
        return "depthwise conv" if group == c_in else "grouped conv"
    return "dense conv, >= 64 channels in and out" if min(c_in, c_out) >= 64 else "dense conv, < 64 channels in or out"


def layer_census(path: Path) -> dict[str, Any]:
    """Share of an ONNX model's MACs (one sample) in each of :data:`LAYER_KINDS`, from inferred shapes.

    The speed-up int8 can bring is bounded by this mix: a model whose MACs sit in narrow, depthwise or
    grouped convs gains little or loses, one made of wide dense convs gains most.
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for inp in model.graph.input:  # batch 1, so reshapes of (batch * frames, ...) resolve
        dims = inp.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {i.name: list(i.dims) for i in model.graph.initializer}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]

    def numel(name: str) -> int:
        return int(np.prod(shapes.get(name, [0])))

    macs: Counter[str] = Counter()
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        w = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Conv" and w and len(w) >= 3:
            group = attrs["group"].i if "group" in attrs else 1
            macs[conv_kind(w[1] * group, w[0], group)] += numel(node.output[0]) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose" and w and len(w) >= 3:
            macs["conv-transpose"] += numel(node.input[0]) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul") and w and len(w) == 2:
            macs["fully connected"] += numel(node.output[0]) * (w[1] if node.op_type == "Gemm" and
                                                                 "transB" in attrs and attrs["transB"].i else w[0])
        elif node.op_type in ("LSTM", "GRU", "RNN") and w and len(w) == 3:
            r = shapes.get(node.input[2], [0, 0, 0])
            steps = shapes.get(node.input[0], [0])[0]
            macs["recurrent"] += steps * (int(np.prod(w)) + int(np.prod(r)))
    total = sum(macs.values())
    return {"macs": int(total),
            "share": {k: (macs[k] / total if total else 0.0) for k in LAYER_KINDS if macs[k]},
            "int8_on_this_kind": {k: v for k, v in LAYER_KINDS.items() if macs[k]}}


def quantize_onnx(fp32: Path, int8: Path, calibration: list[dict[str, np.ndarray]], *, fmt: str,
                  per_channel: bool = True, stem_fp32: bool = False, grouped_fp32: bool = False) -> dict[str, Any]:
    """Static int8 quantization of ``fp32`` into ``int8`` (``fmt`` "qdq" or "qoperator"; ``stem_fp32``: leave
    the image stems in fp32; ``grouped_fp32``: leave the grouped, not depthwise, convs in fp32); returns what
    was done."""
    # The quantizer logs a warning on the root logger for every integer tensor it skips (shapes, indices).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return _quantize_onnx(fp32, int8, calibration, fmt=fmt, per_channel=per_channel, stem_fp32=stem_fp32,
                              grouped_fp32=grouped_fp32)
    finally:
        root.setLevel(level)


def _quantize_onnx(fp32: Path, int8: Path, calibration: list[dict[str, np.ndarray]], *, fmt: str, per_channel: bool,
                   stem_fp32: bool, grouped_fp32: bool) -> dict[str, Any]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Reader, CalibrationDataReader):
        pass

    note = None
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32), str(pre))
            source = pre
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many kinds; the plain export still quantizes
            source, note = fp32, f"quant_pre_process failed ({str(exc).splitlines()[0][:120]}); quantized the export as is"
        stems = stem_convs(source) if stem_fp32 else []
        grouped = grouped_convs(source) if grouped_fp32 else []
        try:
            quantize_static(
                str(source), str(int8), Reader(calibration),
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=stems + grouped, extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
        except Exception as exc:  # noqa: BLE001 - a graph onnxruntime cannot quantize is the user's one-line error
            raise WorkbenchError(f"int8 quantization ({fmt}) failed: {str(exc).splitlines()[0][:200]}") from None
    return {"format": fmt, "stem_fp32": stems, "grouped_fp32": grouped, "preprocessed": note is None, "note": note,
            "ops": _op_counts(int8)}


def _op_counts(path: Path) -> dict[str, int]:
    import onnx

    return dict(Counter(n.op_type for n in onnx.load(str(path)).graph.node).most_common())


def onnx_metrics(path: Path, task: Task, feeds: list[tuple[dict[str, np.ndarray], dict]], outputs: dict[str, str], *,
                 threads: int = 2, progress: Callable[[int], None] | None = None,
                 providers: Sequence[Any] | None = None) -> dict[str, float]:
    """The task's metrics of the ONNX model at ``path`` over ``feeds`` (``outputs``: task name -> graph name);
    ``providers``: onnxruntime execution providers (default CPU)."""
    from workbench.profile.export import onnx_session

    session = onnx_session(path, threads=threads, providers=providers)
    acc = task.accumulator()
    names = list(outputs)
    for feed, batch in feeds:
        got = session.run([outputs[k] for k in names], feed)
        acc.update({k: torch.from_numpy(np.asarray(v)) for k, v in zip(names, got)}, batch)
        if progress:
            progress(len(next(iter(batch.values()))))
    return acc.compute()


def latency(paths: dict[str, Path], feed: dict[str, np.ndarray], *, threads: int = 1, warmup: int = 20,
            repeats: int = 200, progress: Callable[[int], None] | None = None,
            providers: Sequence[Any] | None = None) -> dict[str, dict[str, float]]:
    """Batch latency of each ONNX model on ``feed``: {label: {median_ms, p90_ms, min_ms, cpu_median_ms}}.

    The models run in alternation, one call each per round, so slow phases of a shared CPU hit all alike.
    ``cpu_median_ms`` is the calling thread's CPU time per call: with one intra-op thread onnxruntime
    computes on the caller, so it excludes the time other processes held the core. On a loaded machine
    the wall-clock median of a long call is inflated more than a short one's (it is preempted more often),
    and the CPU-time figures are the fair comparison; on an idle machine the two agree.
    """
    from workbench.profile.export import onnx_session

    sessions = {k: onnx_session(p, threads=threads, providers=providers) for k, p in paths.items()}
    for s in sessions.values():
        for _ in range(warmup):
            s.run(None, feed)
    wall: dict[str, list[float]] = {k: [] for k in sessions}
    cpu: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(repeats):
        for k, s in sessions.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            s.run(None, feed)
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.thread_time() - c0)
        if progress:
            progress(1)
    out = {}
    for k in sessions:
        ms = np.asarray(wall[k]) * 1e3
        out[k] = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "min_ms": float(ms.min()),
                  "cpu_median_ms": float(np.median(np.asarray(cpu[k]) * 1e3)) if threads == 1 else None}
    return out


def _relative_change(task: Task, fp32: float, int8: float) -> float:
    """How much worse int8 is, as a fraction of fp32 (positive = worse), whichever way the metric points."""
    if fp32 == 0:
        return 0.0 if int8 == fp32 else float("inf")
    return (fp32 - int8) / abs(fp32) if task.higher_is_better else (int8 - fp32) / abs(fp32)


def quantize(
    run: str | Path,
    out: str | Path,
    *,
    n_calib: int = 256,
    n_eval: int | None = None,
    fmt: str = "auto",
    per_channel: bool = True,
    threads: int = 1,
    warmup: int = 20,
    repeats: int = 200,
    force: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """int8 post-training static quantization of run folder ``run``; writes ``out/model.onnx`` (fp32),
    ``out/model.int8.onnx`` and ``out/summary.json``, and returns the summary.

    Args:
        n_calib: calibration samples, drawn across subjects from the run's own training split.
        n_eval: validation samples evaluated (default: the run's whole validation split).
        fmt: "qdq", "qoperator", or "auto" (both). Each with and without fp32 image stems (and grouped
            convs, where the model has them); the candidate fastest at batch 1 is kept.
        threads: onnxruntime intra-op threads for the latency and evaluation sessions.
        warmup, repeats: latency calls per model (untimed, timed).
        device: where onnxruntime evaluates and times the models (cpu, or cuda[:N] with its CUDA provider
            where installed; ``auto``: CUDA when both are there). Calibration runs on the CPU.
    """
    from workbench.modelspec import ort_providers
    from workbench.compress.distill import validation_data
    from workbench.profile.export import export_onnx
    from workbench.profile.machine import machine, runtime_version
    from workbench.train.data import resolve_data
    from workbench.train.engine import load_run_model
    from workbench.utils.io import atomic_path, ensure_new_dir

    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown quantization format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if n_calib < 1:
        raise WorkbenchError(f"--n-calib must be at least 1, got {n_calib}")
    if n_eval is not None and n_eval < 1:
        raise WorkbenchError(f"--n-eval must be at least 1, got {n_eval}")
    if threads < 1 or warmup < 0 or repeats < 1:
        raise WorkbenchError(f"expected threads >= 1, warmup >= 0, repeats >= 1; got {threads}, {warmup}, {repeats}")
    providers = ort_providers(device)
    out = ensure_new_dir(out, force=force)
    t0 = time.time()
    model, config, task = load_run_model(run)
    val = validation_data(task, config)
    if n_eval is not None:
        from workbench.train.data import draw

        val = val.subset(draw(val, n_eval, "evaluation", int(config.get("seed", 0))))
    calib, calib_desc = _calibration_data(task, config, n_calib)
    example = dict(zip(task.input_names, task.inputs(val.batch(torch.arange(min(8, len(val)))))))

    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        fp32 = tmp / "model.onnx"
        export = export_onnx(model, example, fp32, output_names=list(task.output_names),
                             metadata={"config": config.get("model", {}), "task": task.name}, device=device)
        names, outputs = export["inputs"], {k: export["outputs"][k] for k in task.output_names}
        calib_feeds = [f for f, _ in onnx_feeds(task, calib, names, 32)]
        candidates = [(f, stem, grouped) for f in (("qdq", "qoperator") if fmt == "auto" else (fmt,))
                      for stem in ((False, True) if stem_convs(fp32) else (False,))
                      for grouped in ((False, True) if grouped_convs(fp32) else (False,))]
        built: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        with progress_bar("calibrating and quantizing", len(candidates), enabled=progress) as advance:
            for f, stem, grouped in candidates:
                label = f + ("+fp32-stem" if stem else "") + ("+fp32-grouped" if grouped else "")
                try:
                    built[label] = quantize_onnx(fp32, tmp / f"{label}.onnx", calib_feeds, fmt=f,
                                                 per_channel=per_channel, stem_fp32=stem, grouped_fp32=grouped)
                except WorkbenchError as exc:  # another layout may still work (onnxruntime's quantizer has gaps)
                    failed[label] = str(exc)
                advance(1, label)
        if not built:
            raise WorkbenchError("; ".join(failed.values()))
        one = onnx_feeds(task, val.subset(torch.arange(1)), names, 1)[0][0]
        with progress_bar("timing batch 1", repeats, enabled=progress) as advance:
            lat = latency({"fp32": fp32, **{k: tmp / f"{k}.onnx" for k in built}}, one, threads=threads,
                          warmup=warmup, repeats=repeats, progress=advance, providers=providers)
        chosen = min(built, key=lambda k: lat[k]["cpu_median_ms"] or lat[k]["median_ms"])
        (tmp / f"{chosen}.onnx").rename(tmp / "model.int8.onnx")
        for k in built:
            if k != chosen:
                (tmp / f"{k}.onnx").unlink()
        feeds = onnx_feeds(task, val, names, 64)
        with progress_bar("evaluating fp32 and int8", 2 * len(val), enabled=progress) as advance:
            m32 = onnx_metrics(fp32, task, feeds, outputs, threads=max(threads, 2), progress=advance, providers=providers)
            m8 = onnx_metrics(tmp / "model.int8.onnx", task, feeds, outputs, threads=max(threads, 2), progress=advance,
                              providers=providers)
        pm = task.primary_metric
        summary = {
            "run": str(run), "task": task.name, "model": config.get("teacher"), "primary_metric": pm,
            "higher_is_better": task.higher_is_better,
            "fp32": {"path": str(Path(out) / "model.onnx"), "metrics": m32, pm: m32[pm], "latency_b1": lat["fp32"],
                     "bytes": fp32.stat().st_size},
            "int8": {"path": str(Path(out) / "model.int8.onnx"), "candidate": chosen, "format": built[chosen]["format"],
                     "stem_fp32": built[chosen]["stem_fp32"], "grouped_fp32": built[chosen]["grouped_fp32"],
                     "metrics": m8, pm: m8[pm],
                     "latency_b1": lat[chosen], "bytes": (tmp / "model.int8.onnx").stat().st_size,
                     "ops": built[chosen]["ops"], "preprocessed": built[chosen]["preprocessed"],
                     "note": built[chosen]["note"]},
            "candidates": {k: {"format": b["format"], "stem_fp32": bool(b["stem_fp32"]),
                               "grouped_fp32": bool(b["grouped_fp32"]), "latency_b1": lat[k], "ops": b["ops"]}
                           for k, b in built.items()},
            "failed_candidates": failed,
            "speedup_b1": lat["fp32"]["median_ms"] / lat[chosen]["median_ms"],
            "speedup_b1_cpu_time": (lat["fp32"]["cpu_median_ms"] / lat[chosen]["cpu_median_ms"]) if threads == 1 else None,
            "metric_change": _relative_change(task, m32[pm], m8[pm]),
            "layers": layer_census(fp32),
            "export_max_abs_diff": export["max_abs_diff"],
            "calibration": {"samples": len(calib), "method": "MinMax", "per_channel": per_channel,
                            "data": calib_desc},
            "evaluation": {"samples": len(val), "data": {**resolve_data("val", config).describe(), "n": len(val)}},
            "latency": {"batch": 1, "threads": threads, "warmup": warmup, "repeats": repeats,
                        "runtime": f"onnxruntime {runtime_version('onnxruntime')}", "provider": export["providers"][0],
                        "graph_optimizations": "all", "machine": machine()},
            "seconds": round(time.time() - t0, 1),
        }
        if summary["speedup_b1"] < 1:
            summary["warning"] = (f"int8 is slower than fp32 at batch 1 ({summary['speedup_b1']:.2f}x); keep the fp32 "
                                  "model. See 'layers' in summary.json for where the MACs sit, and "
                                  "benchmarks/int8_kernels.py (--pair OUT) for what int8 does with each kind of layer on this CPU.")
        write_json(tmp / "summary.json", summary)
    return summary
