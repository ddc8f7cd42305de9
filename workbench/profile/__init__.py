"""Profiling that can be trusted: params, MACs and FLOPs (calflops, cross-checked against torch's
counter, with the recurrent layers both miss), padding-aware frame sizes, ONNX export with a parity
check, and latency in PyTorch eager and onnxruntime.

    >>> from workbench.profile import profile_model, profile_run
    >>> report = profile_model(model, {"face": torch.randn(1, 3, 112, 112)}, depth=2, top=10)
    >>> report["macs"], report["macs_calflops"], report["macs_torch"], report["notes"]

Submodules: :mod:`~workbench.profile.counting` (the counters), :mod:`~workbench.profile.padding`,
:mod:`~workbench.profile.target` (teacher / run folder / ``module:factory``),
:mod:`~workbench.profile.export` (ONNX), :mod:`~workbench.profile.bench` (latency),
:mod:`~workbench.profile.quick` (the light count ``workbench teachers`` uses).
"""

from workbench.profile.counting import count_total, profile_model
from workbench.profile.quick import count_macs, recurrent_macs
from workbench.profile.target import profile_run, profile_target, resolve_target

__all__ = ["count_macs", "count_total", "profile_model", "profile_run", "profile_target", "recurrent_macs",
           "resolve_target"]
