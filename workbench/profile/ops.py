"""Where an ONNX model's time goes in onnxruntime: kernel time per layer kind, and what no kernel accounts for.

onnxruntime's own profiler (``SessionOptions.enable_profiling``) records every node's kernel time per call.
Summed per layer kind (the kinds of :func:`workbench.compress.quantize.conv_kind`, plus fully connected,
recurrent, conv-transpose, and ``other (Op)`` for the rest) and set beside the median time of a whole call,
it shows why halving a model's MACs does not halve its time:

- ``kernel_us``: the sum of the kernels per call, what MACs can shrink;
- ``run_us``: a whole call in the same profiled session (onnxruntime's ``model_run`` event), and
  ``overhead_us`` = ``run_us`` - ``kernel_us`` (node dispatch, memory planning, work outside a kernel): a
  fixed cost per node and per call that pruning channels leaves as it is;
- ``call_us``: the median call of an unprofiled session (the profiler adds its own cost per node);
- ``nodes``: kernels launched per call (fused nodes count once), and ``node_us``, each node's kernel time.

A pruned network keeps every node of its teacher, so at batch 1 its time falls toward the overhead floor
(the workbench's gazenet teacher at 0.25x MACs ran at 1.74x its speed, not 4x: see benchmarks/latency.py
``--per-op``); a narrower student with fewer nodes does not have that floor.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def layer_kinds(path: str | Path) -> dict[str, str]:
    """Node and tensor names of an fp32 ONNX graph -> layer kind, for matching onnxruntime's profiled node
    names (fused conv + activation nodes carry the activation's output name; quantized ones the conv's)."""
    import onnx

    from workbench.compress.quantize import conv_kind

    model = onnx.load(str(path))
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    kind: dict[str, str] = {}
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        k = None
        if node.op_type == "Conv" and w:
            group = attrs["group"].i if "group" in attrs else 1
            k = conv_kind(w[1] * group, w[0], group)
        elif node.op_type == "ConvTranspose":
            k = "conv-transpose"
        elif node.op_type in ("Gemm", "MatMul") and w:
            k = "fully connected"
        elif node.op_type in ("LSTM", "GRU", "RNN"):
            k = "recurrent"
        elif node.op_type in ("Relu", "Clip", "Add", "Sigmoid", "LeakyRelu"):
            k = next((kind[i] for i in node.input if i in kind), None)  # fused into the conv before it
        if k:
            kind[node.name] = k
            kind.update({o: k for o in node.output})
    return kind


_BY_OP = {"FusedGemm": "fully connected", "Gemm": "fully connected", "MatMul": "fully connected",
          "QLinearMatMul": "fully connected", "MatMulInteger": "fully connected", "LSTM": "recurrent",
          "GRU": "recurrent", "ConvTranspose": "conv-transpose"}


def event_kind(kinds: dict[str, str], node: str, op: str) -> str:
    """The layer kind of a profiled kernel: by its node's name in ``kinds`` (see :func:`layer_kinds`; the
    suffixes onnxruntime adds to rewritten nodes dropped), else by its op type, else ``other (op)``."""
    base = re.sub(r"(_token_\d+)?$", "", node).removesuffix("_nchwc").removesuffix("_quant")
    return kinds.get(base) or kinds.get(node) or _BY_OP.get(op) or f"other ({op})"


def time_per_kind(path: str | Path, feed: dict[str, np.ndarray], *, runs: int = 50, threads: int = 1,
                  kinds_from: str | Path | None = None, warmup: int = 10) -> dict[str, Any]:
    """Profile ``runs`` calls of ONNX model ``path`` on ``feed`` (onnxruntime, CPU, ``threads`` intra-op
    threads): {"kinds": {kind: us per call}, "node_us": {node: us per call}, "kernel_us", "run_us" (a call in
    the profiled session), "overhead_us" (run_us - kernel_us, at least 0), "call_us" (the median of an
    unprofiled call), "nodes" (kernels per call), "threads", "runs"}.

    ``kinds_from``: the fp32 graph to name the layer kinds by (for an int8 model); default ``path`` itself.
    """
    import onnxruntime as ort

    from workbench.profile.export import onnx_session

    # The whole call, timed without the profiler (which adds its own cost per node).
    plain = onnx_session(path, threads=threads)
    for _ in range(warmup):
        plain.run(None, feed)
    calls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        plain.run(None, feed)
        calls.append((time.perf_counter() - t0) * 1e6)
    kind = layer_kinds(kinds_from or path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="wb-ops-") as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ops")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup):
            session.run(None, feed)
        for _ in range(runs):
            session.run(None, feed)
        trace = Path(session.end_profiling())
        events = json.loads(trace.read_text())
        os.remove(trace)
    per: dict[str, float] = {}
    per_node: dict[str, float] = {}
    launched = 0
    run_us = [float(e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        launched += 1
        node = e["name"][: -len("_kernel_time")]
        k = event_kind(kind, node, e.get("args", {}).get("op_name", "?"))
        per[k] = per.get(k, 0.0) + float(e["dur"])
        per_node[node] = per_node.get(node, 0.0) + float(e["dur"])
    total_calls = max(1, len(run_us))  # the profiler records every call since the session began, warm-up too
    kinds = {k: v / total_calls for k, v in sorted(per.items(), key=lambda kv: -kv[1])}
    node_us = {k: v / total_calls for k, v in sorted(per_node.items(), key=lambda kv: -kv[1])}
    kernel = sum(kinds.values())
    run = sum(run_us) / total_calls
    return {"kinds": kinds, "node_us": node_us, "kernel_us": kernel, "run_us": run,
            "overhead_us": max(0.0, run - kernel), "call_us": statistics.median(calls),
            "nodes": launched / total_calls, "threads": threads, "runs": runs}


__all__ = ["event_kind", "layer_kinds", "time_per_kind"]
