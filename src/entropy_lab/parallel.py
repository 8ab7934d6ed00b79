"""Data parallelism under `torchrun`: gloo on CPU, nccl on GPUs (one per process).

Nothing here runs unless torchrun set WORLD_SIZE > 1, so every stage is a plain
single-process program by default.
"""

from __future__ import annotations

import os
import re

from entropy_lab.errors import UserError

TORCHRUN = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets beside it


def world_size() -> int:
    """How many processes torchrun started (1 without torchrun). A WORLD_SIZE that is not a
    count, or one above 1 without the rest of torchrun's environment (the process group would
    wait for peers that never come), is one line."""
    raw = os.environ.get("WORLD_SIZE", "1")
    if not re.fullmatch(r"[1-9][0-9]{0,5}", raw):
        raise UserError(
            f"WORLD_SIZE={raw[:40]!r}: not a process count; unset it, or run under torchrun"
        )
    world = int(raw)
    if world > 1:
        if missing := [k for k in TORCHRUN if not os.environ.get(k)]:
            raise UserError(
                f"WORLD_SIZE={world} but {', '.join(missing)} unset: run under "
                f"`torchrun --nproc-per-node {world}`, or unset WORLD_SIZE"
            )
        for key in ("RANK", "LOCAL_RANK"):
            value = os.environ[key]
            if not (re.fullmatch(r"[0-9]{1,6}", value) and int(value) < world):
                raise UserError(f"{key}={value[:40]!r}: not a rank below WORLD_SIZE={world}")
    return world


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
