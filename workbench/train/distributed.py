"""DistributedDataParallel plumbing for `workbench train` under torchrun (gloo on CPU, nccl on GPU).

Without torchrun's environment every helper is a no-op, so the training loop reads the same either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init() -> DistInfo:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if tdist.is_initialized():
        return DistInfo(rank, world, local, False)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    tdist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, True)


def shutdown(info: DistInfo) -> None:
    if info.initialized_here and tdist.is_initialized():
        tdist.destroy_process_group()


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    """One GPU per process under torchrun; CPU stays CPU."""
    if device.type == "cuda" and info.active:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if not info.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(order: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's share of an epoch's sample order; every rank gets the same count (DDP needs equal steps)."""
    if not info.active:
        return order
    per_rank = len(order) // info.world_size
    return order[info.rank::info.world_size][:per_rank]


def barrier(info: DistInfo) -> None:
    if info.active:
        tdist.barrier()


def mean_across(value: float, info: DistInfo) -> float:
    if not info.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    tdist.all_reduce(t)
    return float(t.item() / info.world_size)


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's object on every rank (validation runs on rank 0; early stopping must agree)."""
    if not info.active:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]
