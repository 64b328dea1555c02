"""Train in this process or on N GPUs through torch's own launcher, with the same inputs and the same report.

`training.num_processes` picks: 1 trains here (`train_lora`); N > 1 (or `auto` on a machine with
several GPUs) writes the rows and the config sections to a scratch folder and runs
`torchrun --standalone --nproc-per-node N -m twinsft.training.distributed DIR` (DDP, one process
per GPU), relays rank 0's progress lines and metrics as they come, and reads back the report;
rank 0 writes the adapter straight into `adapter_dir`. The caller (the `train_sft` step) cannot
tell the two apart but by the report's `num_processes`.

`TWINSFT_LAUNCHER=torchrun` sends a one-process run through the launcher too: the benchmark that
holds the launcher's overhead against the in-process path uses it, and so can anyone checking a
multi-GPU set-up on one GPU. It changes where training runs, not what it computes.

Bad input fails before anything starts: the batch that cannot be split, the machine's
requirements (the same checks `build_trainer` makes). A rank's own failure ends all ranks (torchrun
stops the others) and reaches the caller as one exception with one line: the rank's UserError
class for bad input (run.py prints it and exits 2), else `TrainingProcessError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from twinsft import errors
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.errors import ConfigError
from twinsft.training import resume
from twinsft.training.distributed import ERRORS, PROTOCOL, REPORT, STEP_PID_ENV, RankInputs
from twinsft.training.fine_tune import train_lora
from twinsft.training.out_of_memory import OutOfMemory
from twinsft.training.report import TrainReport
from twinsft.training.world import split_batch

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

LAUNCHER_ENV = "TWINSFT_LAUNCHER"
MetricsSink = Callable[[Mapping[str, float], int], None]
# The errors a rank may raise for bad input, re-raised here under the same class (exit status 2 in run.py).
_USER_ERRORS = {cls.__name__: cls for cls in (errors.UserError, errors.ConfigError, errors.DataError, OutOfMemory)}


class TrainingProcessError(RuntimeError):
    """A training process crashed (not bad input); the message names the rank and its error in one line."""


def resolve_processes(training: TrainingSpec) -> int:
    """`auto`: one process per GPU of this machine, 1 without a GPU. An explicit N must not exceed the GPUs."""
    from twinsft.runtime import cuda_available

    gpus = 0
    if cuda_available():
        import torch

        gpus = torch.cuda.device_count()
    if training.num_processes == "auto":
        return max(gpus, 1)
    if gpus and training.num_processes > gpus:
        raise ConfigError(
            f"training.num_processes is {training.num_processes} but this machine has {gpus} GPU(s); "
            f"set it to at most {gpus}, or auto"
        )
    return training.num_processes  # on a CPU, N processes with gloo (how the tests run DDP)


def train(
    train_ds: Dataset,
    eval_ds: Dataset,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    adapter_dir: Path,
    metrics: MetricsSink | None = None,
) -> TrainReport:
    """Train LoRA/QLoRA adapters on as many processes as `training.num_processes` asks; see the module doc.

    `metrics`: where each trainer log (and tokens/s) goes, e.g. an experiment tracker's `log_metrics`.
    """
    processes = resolve_processes(training)
    if processes == 1 and os.environ.get(LAUNCHER_ENV, "") != "torchrun":
        from twinsft.training.callbacks import MetricsCallback

        return train_lora(train_ds, eval_ds, model, lora, training, adapter_dir,
                          callbacks=[MetricsCallback(metrics)] if metrics else None)
    return train_on_processes(train_ds, eval_ds, model, lora, training, adapter_dir, processes, metrics)


def train_on_processes(
    train_ds: Dataset,
    eval_ds: Dataset,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    adapter_dir: Path,
    processes: int,
    metrics: MetricsSink | None = None,
) -> TrainReport:
    """`processes` torchrun ranks (DDP) train; returns rank 0's report. Checkpoints and cleanup as `train_lora`."""
    from twinsft.runtime import check_training_requirements

    split_batch(training, processes)  # a batch that cannot be split fails here, before any process starts
    check_training_requirements(model, training)
    start = resume.resume_point(train_ds, eval_ds, model, lora, training, world_size=processes)
    scratch = Path(tempfile.mkdtemp(prefix="twinsft-ddp-"))
    try:
        train_ds.save_to_disk(str(scratch / "train"))
        eval_ds.save_to_disk(str(scratch / "test"))
        RankInputs(
            model=model.model_dump(mode="json"), lora=lora.model_dump(mode="json"),
            training=training.model_dump(mode="json"), adapter_dir=str(Path(adapter_dir).resolve()),
            resume_folder=str(start.folder), resume_checkpoint=str(start.checkpoint) if start.checkpoint else None,
            resume_step=start.step, train_rows_sha256=start.train_rows_sha256,
            eval_rows_sha256=start.eval_rows_sha256, resume_store=start.store, track_metrics=metrics is not None,
        ).write(scratch)
        log.info("training on %d processes (torchrun, DDP)", processes)
        _run_torchrun(scratch, processes, metrics)
        report = TrainReport.model_validate_json((scratch / REPORT).read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    resume.finish(start, keep=training.keep_checkpoints)
    return report


def torchrun_command(folder: Path, processes: int) -> list[str]:
    """torchrun, as `python -m torch.distributed.run` of this interpreter (the same environment)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            "-m", "twinsft.training.distributed", str(folder)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The ranks import this very twinsft, wherever the step imported it from.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env[STEP_PID_ENV] = str(os.getpid())  # the ranks end themselves if this process dies (even by SIGKILL)
    return env


def _run_torchrun(folder: Path, processes: int, metrics: MetricsSink | None) -> None:
    tail: deque[str] = deque(maxlen=40)  # torchrun's and the libraries' own lines, for a crash message
    proc = subprocess.Popen(torchrun_command(folder, processes), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=_child_env())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            _relay(line.rstrip("\n"), metrics, tail)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # this process was interrupted: take the ranks with it
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if code != 0:
        raise _failure(folder, code, tail)


def _relay(line: str, metrics: MetricsSink | None, tail: deque[str]) -> None:
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


def _failure(folder: Path, code: int, tail: deque[str]) -> Exception:
    """The exception that tells the caller why the ranks stopped: the failing rank's own error when it wrote one."""
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
        return _USER_ERRORS.get(first["type"], errors.UserError)(first["message"])
    log.error("training process rank %d failed:\n%s", first["rank"], first["traceback"].rstrip())
    message = " ".join(first["message"].split()) or "(no message)"
    return TrainingProcessError(f"training process rank {first['rank']} failed: {first['type']}: {message}")
