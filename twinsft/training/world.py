"""The processes that train together: this one's rank, each one's share of the batch, and what they share.

One process is a world of one: every function here then does nothing, or the one process's part of it,
so the training body runs unchanged in the step's process and in each torchrun rank. Imports no other
training module: the body, the checkpoints (training.resume) and the rank entry point all build on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twinsft.config import TrainingSpec
from twinsft.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> World:
        """The rank torchrun gave this process (RANK, LOCAL_RANK, WORLD_SIZE); one process without them."""
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))


def split_batch(training: TrainingSpec, processes: int) -> TrainingSpec:
    """The configured effective batch (micro-batch x accumulation, as for one process) split across processes.

    Each process gets effective / processes sequences per optimizer step: the configured micro-batch when
    it divides that, else the largest micro-batch below it that does; accumulation makes up the rest.
    """
    effective = training.per_device_train_batch_size * training.gradient_accumulation_steps
    if processes == 1:
        return training
    if effective % processes:
        raise ConfigError(
            f"training: the effective batch per_device_train_batch_size x gradient_accumulation_steps = "
            f"{training.per_device_train_batch_size} x {training.gradient_accumulation_steps} = {effective} "
            f"cannot be split across {processes} processes; make it a multiple of {processes} "
            f"or set training.num_processes to a divisor of {effective}"
        )
    per_rank = effective // processes
    micro = next(m for m in range(min(training.per_device_train_batch_size, per_rank), 0, -1) if per_rank % m == 0)
    return training.model_copy(update={"per_device_train_batch_size": micro,
                                       "gradient_accumulation_steps": per_rank // micro})


def join_process_group(world: World) -> None:
    """NCCL between GPUs, gloo on a CPU; each rank on the GPU of its LOCAL_RANK (runtime.device_map reads it)."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    else:  # without it transformers takes a CPU-only rank for a lone process, and no gradient is shared
        os.environ["ACCELERATE_USE_CPU"] = "true"
        # A CPU rank's device is `cpu:<rank>`, and a resume loads the optimizer state onto it; torch.load
        # knows only `cpu`. Teach it that `cpu:<n>` is the CPU too.
        torch.serialization.register_package(
            5, lambda obj: None, lambda obj, location: obj if location.startswith("cpu:") else None)
    if world.size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def largest_over_ranks(value: float) -> float:
    """The maximum of `value` over all ranks (the value itself in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return max(values)
