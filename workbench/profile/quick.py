"""A quick MACs count for tables: torch's FLOP counter, plus the recurrent layers it reports as zero.

torch.utils.flop_counter (like calflops and fvcore) counts an LSTM as 0 MACs. The closed form of one
LSTM step and direction is 4 * (in * h + h * h) multiply-accumulates (four gates, input and recurrent
matrices); a GRU has 3 gates. The full profiler (issue 4) builds on these numbers.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def recurrent_macs(module: nn.RNNBase, seq_len: int, batch: int) -> int:
    """MACs of one forward of an LSTM/GRU/RNN over ``seq_len`` steps for ``batch`` sequences."""
    gates = {"LSTM": 4, "GRU": 3}.get(type(module).__name__, 1)
    h = module.hidden_size
    dirs = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        inp = module.input_size if layer == 0 else h * dirs
        total += gates * (inp * h + h * h) * dirs
    if getattr(module, "proj_size", 0):
        raise NotImplementedError("LSTM with proj_size is not counted")
    return total * seq_len * batch


def count_macs(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """Multiply-accumulates of one forward pass (batch as given): matmul/conv from torch's counter + RNNs."""
    extra = []

    def hook(mod: nn.RNNBase, args, _out) -> None:
        x = args[0]
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise NotImplementedError("packed sequences are not counted")
        batch_first = mod.batch_first
        seq_len, batch = (x.shape[1], x.shape[0]) if (batch_first and x.dim() == 3) else (x.shape[0], x.shape[1] if x.dim() == 3 else 1)
        extra.append(recurrent_macs(mod, seq_len, batch))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.RNNBase)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return int(counter.get_total_flops() // 2 + sum(extra))
