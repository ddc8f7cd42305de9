"""The frozen teacher's outputs (and hint features) per sample, computed once for a distillation run.

The teacher is frozen in eval mode, so its outputs for a given input never change: they (and its hint
features) are cached per sample, keyed by a hash of the input bytes, and later epochs cost no teacher
forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

from workbench.compress.kd_losses import HintCapture

__all__ = ["TeacherCache"]


class TeacherCache:
    """The frozen teacher's outputs (and hint features) per sample, computed once.

    ``__call__(inputs)`` -> (outputs dict, [hint features]); samples are keyed by a hash of their input
    bytes, so shuffled batches and randomized inputs (a miss recomputes) stay exact. Entries stop being
    added beyond ``cache_mb``.
    """

    def __init__(self, teacher: nn.Module, hint_layers: Sequence[str], *, cache_mb: float = 2048.0) -> None:
        self.model = teacher.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.captures = [HintCapture(teacher, name, "teacher", detach=True) for name in hint_layers]
        self.cap_bytes = int(cache_mb * 2 ** 20)
        self.bytes = 0
        self.store: dict[bytes, tuple[dict[str, torch.Tensor], list[torch.Tensor]]] = {}
        self.hits = self.misses = 0

    @staticmethod
    def keys(inputs: Sequence[torch.Tensor]) -> list[bytes]:
        flat = [x.detach().cpu().reshape(len(x), -1).numpy() for x in inputs]
        keys = []
        for i in range(len(flat[0])):
            h = hashlib.blake2b(digest_size=16)
            for f in flat:
                h.update(f[i].tobytes())
            keys.append(h.digest())
        return keys

    @torch.no_grad()
    def run(self, inputs: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """The teacher's forward on a batch, with its hint features."""
        out = self.model(*inputs)
        return {k: v.detach() for k, v in out.items()}, [c.take() for c in self.captures]

    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        if self.cap_bytes <= 0:
            self.misses += len(inputs[0])
            return self.run(inputs)
        keys = self.keys(inputs)
        miss = [i for i, k in enumerate(keys) if k not in self.store]
        self.misses += len(miss)
        self.hits += len(keys) - len(miss)
        fresh: dict[bytes, tuple[dict[str, torch.Tensor], list[torch.Tensor]]] = {}
        if miss:
            idx = torch.tensor(miss, device=inputs[0].device)
            out, feats = self.run([x.index_select(0, idx) for x in inputs])
            for j, i in enumerate(miss):
                entry = ({k: v[j].cpu().clone() for k, v in out.items()}, [f[j].cpu().clone() for f in feats])
                fresh[keys[i]] = entry
                size = sum(v.numel() * v.element_size() for v in (*entry[0].values(), *entry[1]))
                if self.bytes + size <= self.cap_bytes:
                    self.store[keys[i]] = entry
                    self.bytes += size
            if len(miss) == len(keys):
                return out, feats  # already in batch order
        device = inputs[0].device
        entries = [self.store.get(k) or fresh[k] for k in keys]
        outs = {name: torch.stack([e[0][name] for e in entries]).to(device) for name in entries[0][0]}
        feats = [torch.stack([e[1][j] for e in entries]).to(device) for j in range(len(self.captures))]
        return outs, feats
