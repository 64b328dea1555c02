"""One rank of a multi-process (DDP) training run, as torchrun starts it: `python -m twinsft.training.rank DIR`.

`twinsft.training.launch` writes DIR (training.handoff: the rows, the job, the resume point) and starts
`torchrun --standalone --nproc-per-node N -m twinsft.training.rank DIR`. Every rank loads the model
onto its own GPU (LOCAL_RANK), trains its share of each batch through the one training body
(training.fit), and the Trainer (through accelerate) synchronises the LoRA gradients. Rank 0 alone
prints progress, forwards the tracker's metrics, marks checkpoints complete and writes the adapter and
the report; the launcher reads them back, and cleans up the checkpoints.

Its log records and rank 0's metrics reach the launcher as protocol lines on stdout; a rank that fails
writes its error file (training.handoff) and exits 2 for bad input, 1 otherwise. torchrun then ends
the other ranks.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from twinsft.errors import UserError
from twinsft.runtime import check_training_requirements, import_unsloth_first
from twinsft.training.fit import fit
from twinsft.training.handoff import (
    STEP_PID_ENV,
    ProtocolHandler,
    RankInputs,
    forward_metrics,
    write_error,
    write_report,
)
from twinsft.training.world import World, barrier, join_process_group, leave_process_group


def run_rank(folder: Path, world: World) -> None:
    """Prepare this process, train this rank's share; rank 0 saves the adapter and writes DIR/report.json."""
    inputs = RankInputs.read(folder)
    job = inputs.job
    import_unsloth_first(job.training.backend)  # before transformers: Unsloth patches it on import
    check_training_requirements(job.model, job.training)  # this rank's GPU and packages, once
    join_process_group(world)
    report = fit(job, world, inputs.start, forward_metrics if inputs.track_metrics else None)
    if report is not None:
        write_report(folder, report)
    barrier()  # no rank leaves (and no process group ends) while rank 0 still writes


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
    root.handlers[:] = [ProtocolHandler(world.rank)]
    # Rank 0 speaks for the run; the others only warn (their progress would repeat rank 0's).
    root.setLevel(logging.INFO if world.main else logging.WARNING)
    end_with_step()
    try:
        run_rank(folder, world)
    except BaseException as exc:
        write_error(folder, world.rank, exc)
        return 2 if isinstance(exc, UserError) else 1
    finally:
        leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
