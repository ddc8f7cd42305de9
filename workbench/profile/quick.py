"""A quick MACs count for tables: torch's FLOP counter, plus the recurrent layers it reports as zero.

torch.utils.flop_counter (like calflops and fvcore) counts an LSTM as 0 MACs. The closed form of one
LSTM step and direction is 4 * (in * h + h * h) multiply-accumulates (four gates, input and recurrent
matrices); a GRU has 3 gates, a plain RNN 1. The full profiler (:mod:`workbench.profile.counting`)
builds on these numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from workbench.utils.hooks import forward_hooks

GATES = {"LSTM": 4, "GRU": 3}


def recurrent_macs(module: nn.RNNBase, seq_len: int, batch: int) -> int:
    """MACs of one forward of an LSTM/GRU/RNN over ``seq_len`` steps for ``batch`` sequences.

    Per step, layer and direction: ``gates * (in * h + r * h)`` with ``r = h`` (or ``proj_size`` for an
    LSTM with a projection, which then adds ``h * proj_size`` for the projection itself); layers after
    the first read ``r * directions`` features. 2 layers, bidirectional, in = h = 256, 7 steps:
    ``4 * (256*256 + 256*256) * 2 + 4 * (512*256 + 256*256) * 2 = 2,621,440`` per step, 18,350,080 in all.
    """
    gates = GATES.get(module.mode, 1)  # mode: LSTM | GRU | RNN_TANH | RNN_RELU
    h = module.hidden_size
    proj = int(getattr(module, "proj_size", 0) or 0)
    r = proj or h
    dirs = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        inp = module.input_size if layer == 0 else r * dirs
        total += (gates * (inp * h + r * h) + (h * proj if proj else 0)) * dirs
    return total * seq_len * batch


def rnn_call_macs(module: nn.RNNBase, args: Sequence) -> int:
    """MACs of one call ``module(*args)`` of a recurrent layer (batched, unbatched or packed input)."""
    x = args[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        # Every real step of every sequence runs once: the packed data holds sum(lengths) rows.
        return recurrent_macs(module, int(x.data.shape[0]), 1)
    if x.dim() == 2:  # unbatched (T, in)
        return recurrent_macs(module, int(x.shape[0]), 1)
    seq_len, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
    return recurrent_macs(module, int(seq_len), int(batch))


def count_macs(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """Multiply-accumulates of one forward pass (batch as given): matmul/conv from torch's counter + RNNs."""
    extra = []
    recurrent = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.RNNBase)]
    with forward_hooks(recurrent, lambda _n, mod, args, _out: extra.append(rnn_call_macs(mod, args))), \
            torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return int(counter.get_total_flops() // 2 + sum(extra))
