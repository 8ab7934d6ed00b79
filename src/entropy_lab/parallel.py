"""Data parallelism under `torchrun`: gloo on CPU, nccl on GPUs (one per process).

Nothing here runs unless torchrun set WORLD_SIZE > 1, so every stage is a plain
single-process program by default.
"""

from __future__ import annotations

import os


def world_size() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_world() -> tuple[int, int]:
    """(rank, world size); joins the process group and picks this process's GPU."""
    world = world_size()
    if world == 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def all_reduce_sum(tensors) -> None:
    """Sum each tensor over the processes, in place (e.g. gradients of a shared loss)."""
    import torch.distributed as dist

    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
