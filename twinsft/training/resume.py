"""Checkpoints that survive a crash: one folder per training input, resumed from the newest complete one.

A run's checkpoints live in a folder named by a key that hashes everything that decides the trained
weights: the train and eval rows, the model, LoRA and training settings (not where or how often to
checkpoint), the training code and the library versions. Rerunning the same command finds them; any
change that would make resuming wrong starts a fresh folder instead. The training code is the body that
every process runs (training.fit and what it imports), not the launcher or the rank entry point around
it: how the ranks are started or what they log changes no weight.

Where: by default `<artifact store>/twinsft-checkpoints/<key>` of the active ZenML stack, so a rerun on
another machine (a fresh pod) finds them. The Trainer cannot write to an object store, so it trains into
local scratch: the newest complete checkpoint is copied down before training, and each checkpoint the
Trainer saves is copied up as soon as it is saved. With `training.checkpoint_dir` set (a local stack),
the Trainer writes straight into `checkpoint_dir/<key>` and nothing is copied.

The Trainer writes a checkpoint file by file, so a crash can leave one half-written (here or in the
store). A marker file, written after the Trainer reports the save finished, and uploaded after every
other file, tells complete checkpoints from those.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsft import storage
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.data.hashing import content_hash
from twinsft.pinning.code import code_digest
from twinsft.runtime import library_versions
from twinsft.training.job import TrainingJob
from twinsft.training.world import barrier

log = logging.getLogger(__name__)

COMPLETE_MARKER = "twinsft-complete"
STORE_FOLDER = "twinsft-checkpoints"  # under the artifact store's root
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Where and how often to checkpoint does not change the weights, so it may differ on the rerun.
# num_processes: the resolved number (world_size) is in the key instead, so `auto` and 2 on two GPUs match.
NOT_IN_KEY = {"checkpoint_dir", "save_steps", "keep_checkpoints", "report_to", "num_processes"}
TRAINING_CODE = "twinsft.training.fit"  # hashed with all the twinsft code it imports (pinning.code.code_files)


def run_key(train_sha: str, eval_sha: str, model: ModelSpec, lora: LoraSpec, training: TrainingSpec,
            world_size: int = 1, start: str | None = None) -> str:
    """`start`: what a DPO job starts from beyond `model` (the digest of the SFT adapter it continues)."""
    facts: dict[str, Any] = {
        # A checkpoint holds one data-loader and RNG state per process: it resumes only with as many.
        "world_size": world_size,
        "train_rows": train_sha,
        "eval_rows": eval_sha,
        "model": model.model_dump(mode="json"),
        "lora": lora.model_dump(mode="json"),
        "training": training.model_dump(mode="json", exclude=NOT_IN_KEY),
        "code": code_digest(TRAINING_CODE),
        "versions": library_versions(),
    }
    if start is not None:  # absent for SFT, so its keys (and checkpoints) stay as they were
        facts["start"] = start
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def run_dir(training: TrainingSpec, key: str) -> Path:
    assert training.checkpoint_dir is not None
    return Path(training.checkpoint_dir).expanduser().resolve() / key


def store_root() -> str:
    """Where checkpoints go by default: a folder of the active stack's artifact store."""
    from zenml.client import Client

    return storage.join(Client().active_stack.artifact_store.path, STORE_FOLDER)


@dataclass(frozen=True)
class ResumePoint:
    """Where a training run keeps its checkpoints, and the newest complete one to resume from (if any)."""

    folder: Path  # where the Trainer writes (local)
    checkpoint: Path | None
    step: int  # the optimizer step training resumes after; 0 for a fresh start
    train_rows_sha256: str
    eval_rows_sha256: str
    store: str | None = None  # the run's folder in the artifact store, when checkpoints are copied up there


def resume_point(job: TrainingJob, world_size: int = 1) -> ResumePoint:
    """The run's checkpoint folder, keyed by the configured settings (before the memory plan, so a resume
    on another card still finds it), and its newest complete checkpoint (copied down from the store)."""
    training = job.training
    train_sha, eval_sha = content_hash(job.train_ds), content_hash(job.eval_ds)
    start = f"{job.kind}:{storage.content_digest(job.start_adapter)}" if job.start_adapter is not None else None
    key = run_key(train_sha, eval_sha, job.model, job.lora, training, world_size, start)
    store = None
    if training.checkpoint_dir is not None:
        folder = run_dir(training, key)
    else:
        store = storage.join(store_root(), key)
        folder = Path(tempfile.mkdtemp(prefix=f"twinsft-checkpoints-{key}-"))
        download_latest(store, folder)
    checkpoint = latest_complete(folder)
    # Read the step now: the Trainer deletes old checkpoints (save_total_limit) as it saves new ones.
    step = (checkpoint_step(checkpoint) or 0) if checkpoint is not None else 0
    return ResumePoint(folder, checkpoint, step, train_sha, eval_sha, store)


def stored_checkpoints(store: str) -> list[tuple[int, str, bool]]:
    """(step, URI, complete) of each checkpoint folder in the store."""
    from zenml.io import fileio

    if not fileio.isdir(store):
        return []
    found = []
    for name in fileio.listdir(store):
        match = _CHECKPOINT.match(str(name))
        if match:
            uri = storage.join(store, str(name))
            found.append((int(match.group(1)), uri, fileio.exists(storage.join(uri, COMPLETE_MARKER))))
    return sorted(found)


def download_latest(store: str, folder: Path) -> None:
    """Copy the store's newest complete checkpoint into `folder` (its marker last); drop half-written ones."""
    from zenml.io import fileio

    complete = []
    for step, uri, done in stored_checkpoints(store):
        if done:
            complete.append((step, uri))
        else:
            log.warning("ignoring half-written checkpoint %s (no %s marker); deleting it", uri, COMPLETE_MARKER)
            fileio.rmtree(uri)
    if not complete:
        return
    step, uri = complete[-1]
    log.info("copying checkpoint %d down from %s", step, uri)
    local = folder / f"checkpoint-{step}"
    storage.copy_tree(uri, str(local), skip=(COMPLETE_MARKER,))
    storage.copy_file(storage.join(uri, COMPLETE_MARKER), str(local / COMPLETE_MARKER))


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


def save_complete(output_dir: str, step: int, store: str | None) -> None:
    """The Trainer finished writing checkpoint `step`: mark it complete, and copy it up to the store (the marker
    last), then drop the store's older checkpoints."""
    folder = Path(output_dir) / f"checkpoint-{step}"
    if not folder.is_dir():
        return
    (folder / COMPLETE_MARKER).write_text(str(step))
    if store is None:
        return
    from zenml.io import fileio

    uri = storage.join(store, folder.name)
    storage.copy_tree(str(folder), uri, skip=(COMPLETE_MARKER,))
    storage.copy_file(str(folder / COMPLETE_MARKER), storage.join(uri, COMPLETE_MARKER))
    for older, older_uri, _ in stored_checkpoints(store):
        if older < step:
            fileio.rmtree(older_uri)


def mark_complete_callback(store: str | None = None) -> Any:
    """A TrainerCallback that marks each checkpoint complete once the Trainer has finished writing it, and copies
    it to `store` (the run's folder in the artifact store) when given."""
    from transformers import TrainerCallback

    class MarkCheckpointComplete(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            barrier()  # under DDP every rank writes its own RNG state into the folder: complete once all have
            if state.is_world_process_zero:
                save_complete(args.output_dir, state.global_step, store)

    return MarkCheckpointComplete()


def finish(point: ResumePoint, keep: bool) -> None:
    """After a successful train: drop the run's checkpoints unless asked to keep them (local scratch always goes)."""
    if point.store is not None:
        shutil.rmtree(point.folder, ignore_errors=True)
        if not keep:
            from zenml.io import fileio

            if fileio.isdir(point.store):
                fileio.rmtree(point.store)
    elif not keep:
        shutil.rmtree(point.folder, ignore_errors=True)
