"""Checkpoints that survive a crash: one folder per training input, resumed from the newest complete one.

A run's checkpoints live in `training.checkpoint_dir/<key>`, where the key hashes everything that
decides the trained weights: the train and eval rows, the model, LoRA and training settings (not
where or how often to checkpoint), the training code and the library versions. Rerunning the same
command finds them; any change that would make resuming wrong starts a fresh folder instead.

The Trainer writes a checkpoint file by file, so a crash can leave one half-written. A marker file,
written after the Trainer reports the save finished, tells complete checkpoints from those.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.data.hashing import content_hash
from twinsft.runtime import code_digest, library_versions

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

COMPLETE_MARKER = "twinsft-complete"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Where and how often to checkpoint does not change the weights, so it may differ on the rerun.
# num_processes: the resolved number (world_size) is in the key instead, so `auto` and 2 on two GPUs match.
NOT_IN_KEY = {"checkpoint_dir", "save_steps", "keep_checkpoints", "report_to", "num_processes"}


def run_key(train_sha: str, eval_sha: str, model: ModelSpec, lora: LoraSpec, training: TrainingSpec,
            world_size: int = 1) -> str:
    facts: dict[str, Any] = {
        # A checkpoint holds one data-loader and RNG state per process: it resumes only with as many.
        "world_size": world_size,
        "train_rows": train_sha,
        "eval_rows": eval_sha,
        "model": model.model_dump(mode="json"),
        "lora": lora.model_dump(mode="json"),
        "training": training.model_dump(mode="json", exclude=NOT_IN_KEY),
        "code": code_digest("twinsft.training.fine_tune"),
        "versions": library_versions(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def run_dir(training: TrainingSpec, key: str) -> Path:
    return Path(training.checkpoint_dir).expanduser().resolve() / key


@dataclass(frozen=True)
class ResumePoint:
    """Where a training run keeps its checkpoints, and the newest complete one to resume from (if any)."""

    folder: Path
    checkpoint: Path | None
    step: int  # the optimizer step training resumes after; 0 for a fresh start
    train_rows_sha256: str
    eval_rows_sha256: str


def resume_point(train_ds: Dataset, eval_ds: Dataset, model: ModelSpec, lora: LoraSpec,
                 training: TrainingSpec, world_size: int = 1) -> ResumePoint:
    """The run's checkpoint folder, keyed by the configured settings (before the memory plan, so a resume
    on another card still finds it), and its newest complete checkpoint."""
    train_sha, eval_sha = content_hash(train_ds), content_hash(eval_ds)
    folder = run_dir(training, run_key(train_sha, eval_sha, model, lora, training, world_size))
    checkpoint = latest_complete(folder)
    # Read the step now: the Trainer deletes old checkpoints (save_total_limit) as it saves new ones.
    step = (checkpoint_step(checkpoint) or 0) if checkpoint is not None else 0
    return ResumePoint(folder, checkpoint, step, train_sha, eval_sha)


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def latest_complete(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`; half-written ones are deleted so the Trainer never sees them."""
    if not folder.is_dir():
        return None
    complete = []
    for path in folder.iterdir():
        step = checkpoint_step(path)
        if step is None:
            continue
        if (path / COMPLETE_MARKER).is_file():
            complete.append((step, path))
        else:
            log.warning("ignoring half-written checkpoint %s (no %s marker); deleting it", path, COMPLETE_MARKER)
            shutil.rmtree(path, ignore_errors=True)
    return max(complete)[1] if complete else None


def mark_complete_callback() -> Any:
    """A TrainerCallback that marks each checkpoint complete once the Trainer has finished writing it."""
    from transformers import TrainerCallback

    class MarkCheckpointComplete(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            from twinsft.training.distributed import barrier

            barrier()  # under DDP every rank writes its own RNG state into the folder: complete once all have
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    (folder / COMPLETE_MARKER).write_text(str(state.global_step))

    return MarkCheckpointComplete()


def finish(folder: Path, keep: bool) -> None:
    """After a successful train: drop the run's checkpoints unless asked to keep them."""
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
