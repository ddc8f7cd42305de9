"""The frozen teacher's outputs (and hint features) per sample, computed once for a distillation run.

The teacher is frozen in eval mode, so its outputs for a given input never change: they (and its hint
features) are cached per sample, keyed by a hash of the input bytes, and later epochs cost no teacher
forward.
With ``explain`` (the task's ``explain_target``) it also keeps the teacher's input-gradient saliency maps
(:func:`~workbench.compress.kd_losses.saliency_maps`, for saliency KD): they too depend only on the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from workbench.compress.kd_losses import HintCapture, saliency_maps

# One cached sample: (outputs, hint features, saliency maps).
_Entry = tuple[dict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]

__all__ = ["TeacherCache"]


class TeacherCache:
    """The frozen teacher's outputs (and hint features) per sample, computed once.

    ``__call__(inputs)`` -> (outputs dict, [hint features]); samples are keyed by a hash of their input
    bytes, so shuffled batches and randomized inputs (a miss recomputes) stay exact. Entries stop being
    added beyond ``cache_mb``. ``explain`` (outputs -> (B, K)) and ``saliency_inputs`` (indices of image
    inputs) make :meth:`with_saliency` also give the teacher's saliency maps on those inputs (pooled to at
    most ``saliency_grid`` cells per side).
    """

    def __init__(self, teacher: nn.Module, hint_layers: Sequence[str], *, cache_mb: float = 2048.0,
                 explain: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
                 saliency_inputs: Sequence[int] = (), saliency_grid: int = 16) -> None:
        self.model = teacher.eval()
        self.explain = explain
        self.saliency_inputs = list(saliency_inputs) if explain is not None else []
        self.saliency_grid = saliency_grid
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.captures = [HintCapture(teacher, name, "teacher", detach=True) for name in hint_layers]
        self.cap_bytes = int(cache_mb * 2 ** 20)
        self.bytes = 0
        self.store: dict[bytes, _Entry] = {}
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

    def run(self, inputs: Sequence[torch.Tensor]) -> _Entry:
        """The teacher's forward on a batch, with its hint features and (with ``explain``) saliency maps."""
        if not self.saliency_inputs:
            with torch.no_grad():
                out = self.model(*inputs)
            return {k: v.detach() for k, v in out.items()}, [c.take() for c in self.captures], []
        # The maps need the gradient to the inputs (the teacher's weights stay frozen): one forward with
        # a graph on fresh leaves, so the caller's tensors are left as they were.
        with torch.enable_grad():
            xs = [x.detach().requires_grad_(i in self.saliency_inputs) for i, x in enumerate(inputs)]
            out = self.model(*xs)
            maps = saliency_maps(self.explain(out), xs, self.saliency_inputs, create_graph=False,
                                 grid=self.saliency_grid)
        return {k: v.detach() for k, v in out.items()}, [c.take() for c in self.captures], [m.detach() for m in maps]

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """(teacher outputs, [hint features]) for a batch of inputs."""
        out, feats, _ = self.with_saliency(inputs)
        return out, feats

    def with_saliency(self, inputs: Sequence[torch.Tensor]) -> _Entry:
        """(teacher outputs, [hint features], [saliency maps, one per saliency input]) for a batch."""
        if self.cap_bytes <= 0:
            self.misses += len(inputs[0])
            return self.run(inputs)
        keys = self.keys(inputs)
        miss = [i for i, k in enumerate(keys) if k not in self.store]
        self.misses += len(miss)
        self.hits += len(keys) - len(miss)
        fresh: dict[bytes, _Entry] = {}
        if miss:
            idx = torch.tensor(miss, device=inputs[0].device)
            out, feats, maps = self.run([x.detach().index_select(0, idx) for x in inputs])
            for j, i in enumerate(miss):
                entry = ({k: v[j].cpu().clone() for k, v in out.items()}, [f[j].cpu().clone() for f in feats],
                         [m[j].cpu().clone() for m in maps])
                fresh[keys[i]] = entry
                size = sum(v.numel() * v.element_size() for v in (*entry[0].values(), *entry[1], *entry[2]))
                if self.bytes + size <= self.cap_bytes:
                    self.store[keys[i]] = entry
                    self.bytes += size
            if len(miss) == len(keys):
                return out, feats, maps  # already in batch order
        device = inputs[0].device
        entries = [self.store.get(k) or fresh[k] for k in keys]
        outs = {name: torch.stack([e[0][name] for e in entries]).to(device) for name in entries[0][0]}
        feats = [torch.stack([e[1][j] for e in entries]).to(device) for j in range(len(self.captures))]
        maps = [torch.stack([e[2][j] for e in entries]).to(device) for j in range(len(self.saliency_inputs))]
        return outs, feats, maps
