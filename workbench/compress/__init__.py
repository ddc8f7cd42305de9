"""Compression: structural pruning (Torch-Pruning plus the workbench's own LSTM pruner), knowledge
distillation into students, and int8 post-training quantization with onnxruntime."""

from workbench.compress.distill import distill
from workbench.compress.prune import prune
from workbench.compress.quantize import quantize

__all__ = ["distill", "prune", "quantize"]
