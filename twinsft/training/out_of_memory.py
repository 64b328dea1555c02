"""Out of GPU memory: the one error that appears only once training runs, translated into its fixes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from twinsft.config import ModelSpec, TrainingSpec
from twinsft.errors import UserError


class OutOfMemory(UserError):
    """The GPU ran out of memory; the message lists the config changes that lower the peak."""


def out_of_memory_error(model: ModelSpec, training: TrainingSpec, during: str) -> OutOfMemory:
    """The fixes that apply to this config, most effective first (ones already in use are left out)."""
    fixes = []
    if not model.load_in_4bit:
        fixes.append("QLoRA (model.load_in_4bit: true)")
    batch = training.per_device_eval_batch_size if during == "evaluation" else training.per_device_train_batch_size
    field = "per_device_eval_batch_size" if during == "evaluation" else "per_device_train_batch_size"
    if batch > 1:
        fixes.append(
            f"a smaller training.{field} (now {batch})"
            + ("" if during == "evaluation" else ", raising gradient_accumulation_steps to keep the effective batch")
        )
    fixes.append(f"a shorter model.max_seq_length (now {model.max_seq_length})")
    if not training.gradient_checkpointing:
        fixes.append("training.gradient_checkpointing: true")
    return OutOfMemory(f"CUDA out of memory during {during}; try " + "; or ".join(fixes))


@contextmanager
def explain_out_of_memory(model: ModelSpec, training: TrainingSpec, during: str) -> Iterator[None]:
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise out_of_memory_error(model, training, during) from exc
