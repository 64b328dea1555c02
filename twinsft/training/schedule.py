"""The warm-up a run gets, once the trainer knows how many optimizer steps the rows make.

A linear warm-up's first step has learning rate 0, and no step reaches the peak before the warm-up
ends: with the recipe's 10 warm-up steps, a run on a few dozen rows (1 to 10 optimizer steps) would
not train at all. Unset, `training.warmup_steps` is the recipe's 10 but at most a tenth of the run;
a value the user set is kept, with a warning when the run ends before its warm-up does.
"""

from __future__ import annotations

import logging
from typing import Any

from twinsft.config import DEFAULT_WARMUP_STEPS

log = logging.getLogger("twinsft.progress")


def warmup_steps_for(warmup_steps: int | None, optimizer_steps: int, learning_rate: float) -> int:
    """The warm-up for a run of `optimizer_steps`: `warmup_steps` when set; unset, the default (at most a tenth
    of the run), with a line when the run is too short for the default."""
    if warmup_steps is not None:
        if warmup_steps >= optimizer_steps:
            log.warning("training.warmup_steps %d is not less than the %d optimizer steps of this run: the learning "
                        "rate never reaches %g; lower it, or leave it unset to fit the run", warmup_steps,
                        optimizer_steps, learning_rate)
        return warmup_steps
    steps = min(DEFAULT_WARMUP_STEPS, optimizer_steps // 10)
    if steps < DEFAULT_WARMUP_STEPS:
        log.info("training.warmup_steps is not set: warming up over %d of the run's %d optimizer steps (%d by "
                 "default, at most a tenth of the run)", steps, optimizer_steps, DEFAULT_WARMUP_STEPS)
    return steps


def optimizer_steps(trainer: Any) -> int:
    """How many optimizer steps `trainer.train()` will take (max_steps, or epochs over the dataloader), counted
    the way the Trainer counts them."""
    return int(trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())[-1])


def fit_warmup(trainer: Any, warmup_steps: int | None, learning_rate: float) -> int:
    """Set the trainer's warm-up for its own run length (the scheduler is made when training starts)."""
    trainer.args.warmup_steps = warmup_steps_for(warmup_steps, optimizer_steps(trainer), learning_rate)
    return int(trainer.args.warmup_steps)
