"""ONNX export with named inputs and outputs, a dynamic batch axis, and a parity check in onnxruntime.

The model's positional inputs keep their names (``model.input_names``) and its dict outputs become
named graph outputs in ``model.output_names`` order. ONNX names must be unique in a graph, so an
output that shares its name with an input (MC4's ``eye`` is both) is exported as ``<name>_out``; the
mapping is returned and stored in the file's metadata (``workbench.outputs``). Inputs the model never
reads (GazeLSTM ignores head pose and landmarks) are dropped by the exporter; they are listed under
``unused_inputs``.

The legacy TorchScript exporter (``dynamo=False``) is used: it handles every teacher (LSTM, grid_sample
for the deformable convolution, atan2 in MC4's composition) in well under a second each.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.profile.inputs import call_args, first_error_line, output_dict, run_model
from workbench.utils.io import atomic_path

__all__ = ["DEFAULT_OPSET", "PARITY_ATOL", "ExportParityError", "export_onnx", "export_run", "onnx_session"]

DEFAULT_OPSET = 17  # GridSample needs >= 16; 17 is well supported by onnxruntime 1.17+
PARITY_ATOL = 1e-4  # largest allowed |onnxruntime - PyTorch| in fp32


class ExportParityError(WorkbenchError):
    """onnxruntime's outputs differ from PyTorch's by more than the tolerance."""


class _Flat(nn.Module):
    """Positional inputs -> a tuple of outputs in a fixed order (what the exporter needs)."""

    def __init__(self, model: nn.Module, keys: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = list(keys)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(output_dict(self.model(*args), self.keys).values())


def onnx_session(path: str | Path, *, threads: int | None = None, providers: Sequence[Any] | None = None) -> Any:
    """An onnxruntime session (CPU unless ``providers``, e.g. :func:`workbench.modelspec.ort_providers`);
    ``threads`` sets intra-op threads (inter-op 1, sequential)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise WorkbenchError(f"{path}: onnxruntime cannot load the model: {first_error_line(exc)}") from None


def _max_diff(session: Any, inputs: Mapping[str, torch.Tensor], ref: Mapping[str, torch.Tensor],
              onnx_out: Mapping[str, str]) -> dict[str, float]:
    feed = {i.name: inputs[i.name].detach().cpu().numpy() for i in session.get_inputs()}
    got = session.run([onnx_out[k] for k in ref], feed)
    return {k: float(np.max(np.abs(g.astype(np.float64) - r.detach().double().cpu().numpy()), initial=0.0))
            for (k, r), g in zip(ref.items(), got)}


def export_onnx(model: nn.Module, inputs: Mapping[str, torch.Tensor], path: str | Path, *,
                output_names: Sequence[str] | None = None, opset: int = DEFAULT_OPSET,
                atol: float = PARITY_ATOL, metadata: Mapping[str, Any] | None = None,
                device: str = "cpu") -> dict[str, Any]:
    """Export ``model`` to ``path`` (atomically) and check it in onnxruntime on ``inputs``.

    Args:
        inputs: {name: (B, ...) tensor}, a real batch (B >= 2 checks more); names as the model takes them.
        output_names: outputs in graph order (default ``model.output_names`` or the dict's keys).
        opset: ONNX opset. atol: the largest allowed absolute difference (fp32).
        metadata: extra JSON-able values stored in the file's metadata (``workbench.<key>``).
        device: where onnxruntime runs the parity check (auto, cpu, cuda[:N]: its CUDA provider where
            installed); the PyTorch reference runs on the CPU, where the model is exported.

    The check runs the batch as given and its first row alone (the batch axis is dynamic). If the
    largest difference exceeds ``atol`` an :class:`ExportParityError` is raised and no file is left.
    Returns {path, max_abs_diff, max_abs_diff_by_output, inputs, outputs (name -> ONNX name),
    unused_inputs, opset, batch_checked}.
    """
    from torch.onnx import _constants

    from workbench.modelspec import ort_providers

    lowest, highest = _constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    if not lowest <= opset <= highest:  # checked first: torch dumps its whole IR to stdout for an opset it lacks
        raise WorkbenchError(f"--opset {opset}: this torch exports opsets {lowest} to {highest}")
    providers = ort_providers(device)
    names, args = call_args(model, inputs)
    was_training = model.training
    model.eval()
    try:
        ref = output_dict(run_model(model, inputs), output_names or getattr(model, "output_names", None))
        onnx_out = {k: (f"{k}_out" if k in names else k) for k in ref}
        flat = _Flat(model, list(ref)).eval()
        path = Path(path)
        with atomic_path(path) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about shape checks turned constant
                try:
                    torch.onnx.export(
                        flat, args, str(tmp), input_names=names, output_names=list(onnx_out.values()),
                        dynamic_axes={n: {0: "batch"} for n in [*names, *onnx_out.values()]},
                        opset_version=opset, do_constant_folding=True, dynamo=False,
                    )
                except Exception as exc:  # noqa: BLE001 - the exporter fails in many ways on unsupported ops
                    why = first_error_line(exc).replace(str(tmp), str(path))  # name the user's file, not ours
                    raise WorkbenchError(f"ONNX export failed (opset {opset}): {why}") from None
            _add_metadata(tmp, {"outputs": onnx_out, "inputs": names, **(metadata or {})})
            session = onnx_session(tmp, providers=providers)
            kept = [i.name for i in session.get_inputs()]
            one = {k: v[:1] for k, v in inputs.items()}
            with torch.no_grad():
                ref_one = output_dict(model(*(one[n] for n in names)), list(ref))
            by_output = _max_diff(session, inputs, ref, onnx_out)
            for k, d in _max_diff(session, one, ref_one, onnx_out).items():
                by_output[k] = max(by_output[k], d)
            worst = max(by_output.values(), default=0.0)
            if not np.isfinite(worst) or worst > atol:
                raise ExportParityError(f"ONNX parity failed: largest |onnxruntime - PyTorch| is {worst:.3g} "
                                        f"(> {atol:g}) in {max(by_output, key=by_output.get)!r}; no file written")
    finally:
        model.train(was_training)
    return {
        "path": str(path), "max_abs_diff": worst, "max_abs_diff_by_output": by_output, "atol": atol,
        "inputs": kept, "outputs": onnx_out, "unused_inputs": [n for n in names if n not in kept],
        "opset": opset, "batch_checked": [int(next(iter(inputs.values())).shape[0]), 1],
        "bytes": path.stat().st_size, "providers": session.get_providers(),
    }


def _add_metadata(path: Path, meta: Mapping[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key = f"workbench.{key}"
        entry.value = json.dumps(value)
    onnx.save(model, str(path))


def export_run(run_dir: str | Path, path: str | Path, *, n: int = 8, opset: int = DEFAULT_OPSET,
               device: str = "cpu") -> dict[str, Any]:
    """Export a run folder's best checkpoint; parity is checked on ``n`` samples of the run's own
    validation split (drawn across subjects, at its data's size). Returns :func:`export_onnx`'s dict plus
    run info, with ``data`` saying which samples."""
    from workbench.profile.target import run_data_batch
    from workbench.train.engine import load_run_model

    run = Path(run_dir)
    if not (run / "config.json").exists():
        raise WorkbenchError(f"{run}: not a run folder (no config.json)")
    model, config, task = load_run_model(run)
    names = list(getattr(model, "input_names", None) or task.input_names)
    inputs, data, _ = run_data_batch(config, task, n, names)
    out = export_onnx(model, inputs, path, output_names=getattr(model, "output_names", None) or task.output_names,
                      opset=opset, metadata={"config": config.get("model", {}), "task": task.name}, device=device)
    out.update({"run": str(run), "task": task.name, "data": data})
    return out
