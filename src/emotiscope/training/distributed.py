"""Data-parallel training (`train --nproc N`): torch DistributedDataParallel, one process per rank.

On one machine `launch` starts N processes with torch.multiprocessing (gloo on CPU, NCCL on
CUDA, rendezvous on 127.0.0.1 and a free port). Across machines torchrun starts them and sets
RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, which `join_torchrun` reads:

    torchrun --nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m emotiscope train fer2013.csv --out /shared/runs

Every rank holds the whole (small) training set and draws the same permutation of it each epoch;
each step, rank r takes every N-th face of the step's batch from r on, so one step still sees
`batch_size` faces in all. Only rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) when not distributed."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def backend() -> str:
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def join_torchrun() -> int:
    """Join the process group torchrun set up (its RANK/WORLD_SIZE variables); returns the world
    size, or 0 when this process was not started by torchrun."""
    if active():
        return dist.get_world_size()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend())
    return dist.get_world_size()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, threads: int | None, func: Callable[..., Any], *args) -> Any:
    """Run func(*args) in `nproc` processes joined in one process group; rank 0's return value.
    Each process gets `threads` torch threads (default: the cores shared out)."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    port = _free_port()
    mp.spawn(_entry, args=(nproc, port, threads, results, func, args), nprocs=nproc, join=True)
    return results.get()


def _entry(rank: int, world: int, port: int, threads: int | None, results, func, args) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world))
    if torch.cuda.is_available():
        torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group(backend(), rank=rank, world_size=world)
    try:
        result = func(*args)
        if rank == 0:
            results.put(result)
        # Leave together: rank 0 finishes the run alone (report, export) while the others would
        # otherwise tear the group down and exit under it; CI saw one such rank abort in C++.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module DDP trains (the plain one when not distributed)."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def share(value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def total(values: list[float], device: torch.device) -> list[float]:
    """The sums of `values` over all ranks."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's faces of one step's batch: every N-th from its rank on (at least one)."""
    rank, world = rank_world()
    if world == 1:
        return idx
    return idx[rank % len(idx)::world]


def reseed(seed: int, epoch: int, device: torch.device) -> torch.Generator | None:
    """With several ranks: a generator for this rank's augmentation in `epoch`, and the global
    generator (dropout) seeded likewise, so that a resumed run repeats the epoch exactly without
    every rank's random state in the checkpoint. None with one process (its state is saved)."""
    rank, world = rank_world()
    if world == 1:
        return None
    value = (seed * 1_000_003 + epoch * 1009 + rank) % (2**63)
    torch.manual_seed(value)
    return torch.Generator(device=device).manual_seed(value + 1)
