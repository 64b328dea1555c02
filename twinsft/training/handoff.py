"""What passes between the launcher (training.launch) and the torchrun ranks (training.rank), both ends of each.

DIR, a scratch folder the launcher makes per run:
- inputs.json and the rows beside it (train/, test/): the job, the resume point, whether metrics are wanted;
- report.json: rank 0's report, once it has saved the adapter;
- errors/rank<R>.json: a failing rank's exception (class, message, traceback), written whole or not at all.
A rank's stdout: lines that start with PROTOCOL carry a JSON log record (any rank) or a metrics dict (rank 0);
the launcher re-logs and forwards them as they come, and keeps the other lines for a crash message.
STEP_PID_ENV: the launching process's id, so that ranks end themselves when it dies.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsft import errors
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.training.job import MetricsSink, TrainingJob
from twinsft.training.out_of_memory import OutOfMemory
from twinsft.training.report import TrainReport
from twinsft.training.resume import ResumePoint

log = logging.getLogger(__name__)

PROTOCOL = "@twinsft "
INPUTS = "inputs.json"
TRAIN_ROWS, EVAL_ROWS = "train", "test"
REPORT = "report.json"
ERRORS = "errors"
STEP_PID_ENV = "TWINSFT_STEP_PID"
# The errors a rank may raise for bad input, re-raised by the launcher under the same class (exit 2 in run.py).
USER_ERRORS = {cls.__name__: cls for cls in (errors.UserError, errors.ConfigError, errors.DataError, OutOfMemory)}


class TrainingProcessError(RuntimeError):
    """A training process crashed (not bad input); the message names the rank and its error in one line."""


# ---------------------------------------------------------------- DIR/inputs.json, DIR/report.json


@dataclass(frozen=True)
class RankInputs:
    """What the launcher hands every rank."""

    job: TrainingJob  # its training section as configured: each rank splits the batch
    start: ResumePoint  # the launcher's: every rank writes into its folder, rank 0 copies checkpoints to its store
    track_metrics: bool

    def write(self, folder: Path) -> None:
        job, start = self.job, self.start
        job.train_ds.save_to_disk(str(folder / TRAIN_ROWS))
        job.eval_ds.save_to_disk(str(folder / EVAL_ROWS))
        (folder / INPUTS).write_text(json.dumps({
            "model": job.model.model_dump(mode="json"),
            "lora": job.lora.model_dump(mode="json"),
            "training": job.training.model_dump(mode="json"),
            "adapter_dir": str(Path(job.adapter_dir).resolve()),
            "resume_folder": str(start.folder),
            "resume_checkpoint": str(start.checkpoint) if start.checkpoint else None,
            "resume_step": start.step,
            "train_rows_sha256": start.train_rows_sha256,
            "eval_rows_sha256": start.eval_rows_sha256,
            "resume_store": start.store,
            "track_metrics": self.track_metrics,
        }))

    @classmethod
    def read(cls, folder: Path) -> RankInputs:
        from datasets import load_from_disk  # imports none of what Unsloth patches: it may come before Unsloth

        saved = json.loads((folder / INPUTS).read_text())
        job = TrainingJob(
            load_from_disk(str(folder / TRAIN_ROWS)), load_from_disk(str(folder / EVAL_ROWS)),
            ModelSpec(**saved["model"]), LoraSpec(**saved["lora"]), TrainingSpec(**saved["training"]),
            Path(saved["adapter_dir"]),
        )
        checkpoint = saved["resume_checkpoint"]
        start = ResumePoint(Path(saved["resume_folder"]), Path(checkpoint) if checkpoint else None,
                            saved["resume_step"], saved["train_rows_sha256"], saved["eval_rows_sha256"],
                            saved["resume_store"])
        return cls(job, start, saved["track_metrics"])


def write_report(folder: Path, report: TrainReport) -> None:
    (folder / REPORT).write_text(report.model_dump_json())


def read_report(folder: Path) -> TrainReport:
    return TrainReport.model_validate_json((folder / REPORT).read_text())


# ---------------------------------------------------------------- stdout: log records and metrics


class ProtocolHandler(logging.Handler):
    """Log records as protocol lines, which the launcher re-logs under the same logger name and level."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage() if self.rank == 0 else f"[rank {self.rank}] {record.getMessage()}"
        send({"log": record.levelno, "name": record.name, "msg": message})


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(PROTOCOL + json.dumps(message) + "\n")
    sys.stdout.flush()


def forward_metrics(metrics: Mapping[str, float], step: int) -> None:
    """Rank 0's metrics sink: the launcher hands these to its own sink (an experiment tracker's)."""
    send({"metrics": dict(metrics), "step": step})


def relay(line: str, metrics: MetricsSink | None, tail: deque[str]) -> None:
    """One line of the ranks' output: a protocol line re-logged or forwarded, any other kept in `tail`."""
    if not line.startswith(PROTOCOL):
        if line.strip():
            tail.append(line)
            log.debug("torchrun: %s", line)
        return
    try:
        message = json.loads(line[len(PROTOCOL):])
    except json.JSONDecodeError:  # two ranks' writes interleaved: keep it as plain output
        tail.append(line)
        return
    if "metrics" in message:
        if metrics is not None:
            metrics(message["metrics"], int(message["step"]))
    else:
        logging.getLogger(message["name"]).log(int(message["log"]), "%s", message["msg"])


# ---------------------------------------------------------------- DIR/errors


def write_error(folder: Path, rank: int, exc: BaseException) -> None:
    errors_dir = folder / ERRORS
    errors_dir.mkdir(exist_ok=True)
    # Whole or not at all: torchrun may stop this rank mid-write (another rank's failure ends them all).
    partial = errors_dir / f".rank{rank}.json.partial"
    partial.write_text(json.dumps({
        "rank": rank,
        "type": type(exc).__name__,
        "user_error": isinstance(exc, errors.UserError),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }))
    partial.replace(errors_dir / f"rank{rank}.json")


def rank_failure(folder: Path, code: int, tail: Sequence[str]) -> Exception:
    """The exception that tells the caller why the ranks stopped: the failing rank's own error when it wrote one.

    `code`: torchrun's exit status; `tail`: its last lines of output, for a rank that died without a word.
    """
    reports = [json.loads(p.read_text()) for p in sorted((folder / ERRORS).glob("rank*.json"),
                                                         key=lambda p: p.stat().st_mtime)]  # written whole
    # The first bad-input error, else the earliest failure (the others' are often its echo: a broken collective).
    first = next((r for r in reports if r["user_error"]), reports[0] if reports else None)
    if first is None:  # a rank died before it could say why (killed, or failed to start): torchrun's own summary
        for line in tail:
            log.error("torchrun: %s", line)
        said = [ln.strip() for ln in tail if re.search(r"[A-Za-z]*Error|exitcode|[Ss]ignal|Killed|fault", ln)]
        why = " / ".join(dict.fromkeys(said[-3:])) or (tail[-1].strip() if tail else "no output")
        return TrainingProcessError(f"torchrun exited with status {code} before any rank reported an error: {why}")
    if first["user_error"]:
        return USER_ERRORS.get(first["type"], errors.UserError)(first["message"])
    log.error("training process rank %d failed:\n%s", first["rank"], first["traceback"].rstrip())
    message = " ".join(first["message"].split()) or "(no message)"
    return TrainingProcessError(f"training process rank {first['rank']} failed: {first['type']}: {message}")
