"""One rank of a multi-process (DDP) training run, as torchrun starts it: `python -m twinsft.training.distributed DIR`.

`twinsft.training.launch` writes DIR (the rows, the config sections, the resume point) and starts
`torchrun --standalone --nproc-per-node N -m twinsft.training.distributed DIR`. Every rank loads
the model onto its own GPU (LOCAL_RANK), trains its share of each batch, and the Trainer (through
accelerate) synchronises the LoRA gradients. Rank 0 alone prints progress, forwards the tracker's
metrics, marks checkpoints complete and writes the adapter and the report; the parent process
(the pipeline step) reads them back, and cleans up the checkpoints.

What reaches the parent: lines on stdout that start with `PROTOCOL` carry a JSON log record or a
metrics dict (rank 0); a rank that fails writes `errors/rank<R>.json` (its exception's class, message
and traceback) and exits 2 for bad input, 1 otherwise. torchrun then ends the other ranks.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.errors import UserError
from twinsft.training.world import (
    World,
    barrier,
    join_process_group,
    largest_over_ranks,
    leave_process_group,
    split_batch,
)

PROTOCOL = "@twinsft "
INPUTS = "inputs.json"
REPORT = "report.json"
ERRORS = "errors"
STEP_PID_ENV = "TWINSFT_STEP_PID"


# ---------------------------------------------------------------- one rank's run


class _ProtocolHandler(logging.Handler):
    """Log records as protocol lines, which the parent re-logs under the same logger name and level."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage() if self.rank == 0 else f"[rank {self.rank}] {record.getMessage()}"
        _send({"log": record.levelno, "name": record.name, "msg": message})


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(PROTOCOL + json.dumps(message) + "\n")
    sys.stdout.flush()


def forward_metrics(metrics: Mapping[str, float], step: int) -> None:
    """The parent hands these to the experiment tracker (rank 0's MetricsCallback sink)."""
    _send({"metrics": dict(metrics), "step": step})


@dataclass(frozen=True)
class RankInputs:
    """What the parent hands every rank, as written to DIR/inputs.json (datasets beside it)."""

    model: dict[str, Any]
    lora: dict[str, Any]
    training: dict[str, Any]  # as configured; each rank splits the batch
    adapter_dir: str
    resume_folder: str
    resume_checkpoint: str | None
    resume_step: int
    train_rows_sha256: str
    eval_rows_sha256: str
    resume_store: str | None  # the run's checkpoint folder in the artifact store; rank 0 copies each checkpoint up
    track_metrics: bool

    def write(self, folder: Path) -> None:
        (folder / INPUTS).write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, folder: Path) -> RankInputs:
        return cls(**json.loads((folder / INPUTS).read_text()))


def run_rank(folder: Path, world: World) -> None:
    """Train this rank's share; rank 0 saves the adapter and writes DIR/report.json."""
    from datasets import load_from_disk
    from transformers import PrinterCallback

    from twinsft.training import resume
    from twinsft.training.callbacks import MetricsCallback, ProgressCallback
    from twinsft.training.fine_tune import _evaluate_train_evaluate, _report, _save_adapter, build_trainer
    from twinsft.training.out_of_memory import explain_out_of_memory

    inputs = RankInputs.read(folder)
    model, lora = ModelSpec(**inputs.model), LoraSpec(**inputs.lora)
    training = split_batch(TrainingSpec(**inputs.training), world.size)
    train_ds, eval_ds = load_from_disk(str(folder / "train")), load_from_disk(str(folder / "test"))
    start = resume.ResumePoint(
        Path(inputs.resume_folder), Path(inputs.resume_checkpoint) if inputs.resume_checkpoint else None,
        inputs.resume_step, inputs.train_rows_sha256, inputs.eval_rows_sha256, inputs.resume_store,
    )
    # Every rank writes into the one local folder the step made; rank 0 copies complete checkpoints to the store.
    callbacks: list[Any] = [resume.mark_complete_callback(start.store)]
    if world.main:
        callbacks.append(ProgressCallback())
        if inputs.track_metrics:
            callbacks.append(MetricsCallback(forward_metrics))
    with explain_out_of_memory(model, training, "model loading"):
        setup = build_trainer(train_ds, eval_ds, model, lora, training, callbacks=callbacks, output_dir=start.folder)
    setup.trainer.remove_callback(PrinterCallback)
    before, result, after = _evaluate_train_evaluate(setup, model, start)
    from twinsft.runtime import peak_memory_gib

    peak = largest_over_ranks(peak_memory_gib()[0])
    if world.main:
        _save_adapter(setup, Path(inputs.adapter_dir))
        report = _report(setup, model, start, before, after, result, rows=(len(train_ds), len(eval_ds)))
        report = report.model_copy(update={"num_processes": world.size, "peak_memory_gib": round(peak, 3)})
        (folder / REPORT).write_text(report.model_dump_json())
    barrier()  # no rank leaves (and no process group ends) while rank 0 still writes


def _write_error(folder: Path, world: World, exc: BaseException) -> None:
    errors = folder / ERRORS
    errors.mkdir(exist_ok=True)
    # Whole or not at all: torchrun may stop this rank mid-write (another rank's failure ends them all).
    partial = errors / f".rank{world.rank}.json.partial"
    partial.write_text(json.dumps({
        "rank": world.rank,
        "type": type(exc).__name__,
        "user_error": isinstance(exc, UserError),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }))
    partial.replace(errors / f"rank{world.rank}.json")


def end_with_step(env: Mapping[str, str] = os.environ, every_s: float = 2.0) -> None:
    """Exit when the step's process that launched us is gone: killed, it cannot stop torchrun, and ranks
    would train on as orphans. (One rank's exit then makes torchrun stop the others.)"""
    import threading
    import time

    pid = int(env.get(STEP_PID_ENV, 0))
    if not pid:
        return

    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, owned by someone else (never here, but not gone)
                pass

    threading.Thread(target=watch, name="end-with-step", daemon=True).start()


def main(argv: list[str]) -> int:
    folder, world = Path(argv[0]), World.from_env()
    root = logging.getLogger()
    root.handlers[:] = [_ProtocolHandler(world.rank)]
    # Rank 0 speaks for the run; the others only warn (their progress would repeat rank 0's).
    root.setLevel(logging.INFO if world.main else logging.WARNING)
    end_with_step()
    try:
        from twinsft.runtime import import_unsloth_first

        import_unsloth_first(TrainingSpec(**RankInputs.read(folder).training).backend)  # before transformers
        join_process_group(world)
        run_rank(folder, world)
    except BaseException as exc:
        _write_error(folder, world, exc)
        return 2 if isinstance(exc, UserError) else 1
    finally:
        leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
