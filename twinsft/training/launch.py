"""Train in this process or on N GPUs through torch's own launcher, with the same inputs and the same report.

`training.num_processes` picks: 1 trains here; N > 1 (or `auto` on a machine with several GPUs)
writes the job to a scratch folder (training.handoff) and runs
`torchrun --standalone --nproc-per-node N -m twinsft.training.rank DIR` (DDP, one process per GPU),
relays rank 0's progress lines and metrics as they come, and reads back the report; rank 0 writes
the adapter straight into the job's `adapter_dir`. Both ways run the one training body
(training.fit), so the caller (the `train_sft` step) cannot tell them apart but by the report's
`num_processes`.

`TWINSFT_LAUNCHER=torchrun` sends a one-process run through the launcher too: the benchmark that
holds the launcher's overhead against the in-process path uses it, and so can anyone checking a
multi-GPU set-up on one GPU. It changes where training runs, not what it computes.

The caller prepares its own process once (runtime.import_unsloth_first, then the machine's
requirements: the step's check_machine), so a bad config fails before anything starts, as does a
batch that cannot be split; each rank prepares its own. A rank's own failure ends all ranks (torchrun
stops the others) and reaches the caller as one exception with one line: the rank's UserError class
for bad input (run.py prints it and exits 2), else `handoff.TrainingProcessError`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.errors import ConfigError
from twinsft.runtime import check_training_requirements, cuda_available, import_unsloth_first
from twinsft.training import resume
from twinsft.training.fit import fit
from twinsft.training.handoff import STEP_PID_ENV, RankInputs, rank_failure, read_report, relay
from twinsft.training.job import MetricsSink, TrainingJob
from twinsft.training.report import TrainReport
from twinsft.training.world import World, split_batch

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

LAUNCHER_ENV = "TWINSFT_LAUNCHER"
RANK_MODULE = "twinsft.training.rank"  # what torchrun runs in each rank; by name: this module never imports it


def resolve_processes(training: TrainingSpec) -> int:
    """`auto`: one process per GPU of this machine, 1 without a GPU. An explicit N must not exceed the GPUs."""
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


def train(job: TrainingJob, metrics: MetricsSink | None = None) -> TrainReport:
    """Train on as many processes as `job.training.num_processes` asks; see the module doc.

    `metrics`: where each trainer log (and tokens/s) goes, e.g. an experiment tracker's `log_metrics`.
    """
    processes = resolve_processes(job.training)
    if processes == 1 and os.environ.get(LAUNCHER_ENV, "") != "torchrun":
        return train_here(job, metrics)
    return train_on_processes(job, processes, metrics)


def train_lora(train_ds: Dataset, eval_ds: Dataset, model: ModelSpec, lora: LoraSpec, training: TrainingSpec,
               adapter_dir: Path) -> TrainReport:
    """Train LoRA/QLoRA adapters in this process, for callers outside the pipeline (tests, a notebook): this
    process is prepared first (Unsloth before transformers, the machine's requirements), then as `train_here`."""
    import_unsloth_first(training.backend)
    check_training_requirements(model, training)
    return train_here(TrainingJob(train_ds, eval_ds, model, lora, training, Path(adapter_dir)))


def train_here(job: TrainingJob, metrics: MetricsSink | None = None) -> TrainReport:
    """Train in this process, a world of one. Resumes from the newest complete checkpoint of the same inputs
    and drops the checkpoints after success (see twinsft.training.resume)."""
    start = resume.resume_point(job)
    report = fit(job, World(), start, metrics)
    assert report is not None  # the one process is the main rank
    resume.finish(start, keep=job.training.keep_checkpoints)
    return report


def train_on_processes(job: TrainingJob, processes: int, metrics: MetricsSink | None = None) -> TrainReport:
    """`processes` torchrun ranks (DDP) train; returns rank 0's report. Checkpoints and cleanup as `train_here`."""
    split_batch(job.training, processes)  # a batch that cannot be split fails here, before any process starts
    start = resume.resume_point(job, world_size=processes)
    scratch = Path(tempfile.mkdtemp(prefix="twinsft-ddp-"))
    try:
        RankInputs(job, start, track_metrics=metrics is not None).write(scratch)
        log.info("training on %d processes (torchrun, DDP)", processes)
        _run_torchrun(scratch, processes, metrics)
        report = read_report(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    resume.finish(start, keep=job.training.keep_checkpoints)
    return report


def torchrun_command(folder: Path, processes: int) -> list[str]:
    """torchrun, as `python -m torch.distributed.run` of this interpreter (the same environment)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            "-m", RANK_MODULE, str(folder)]


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
            relay(line.rstrip("\n"), metrics, tail)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # this process was interrupted: take the ranks with it
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if code != 0:
        raise rank_failure(folder, code, tail)
