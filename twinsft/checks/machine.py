"""What the machine a GPU step runs on must have: CUDA and bitsandbytes where the config needs them, a Hub
token for a gated model.

`run.py` checks them on the client when the steps run there (`twinsft.checks.preflight`). When they run
elsewhere (a remote orchestrator, a step operator), the client's GPU and environment say nothing about the
pod's, so each GPU step repeats these checks at its start, in the pod, with the same one-line errors.
"""

from __future__ import annotations

from twinsft.checks.gated_models import check_gated_access
from twinsft.config import ModelSpec, TrainingSpec
from twinsft.runtime import check_training_requirements

# Generation trains nothing: only the model's own needs (4-bit loading for QLoRA) count, not the optimizer's.
_NO_TRAINING = TrainingSpec(optim="adamw_torch")


def check_machine(model: ModelSpec, training: TrainingSpec | None = None, *, merge: bool = False) -> None:
    """Raises ConfigError (one line, naming the field and the fix) when this machine cannot run the step.

    `train_sft` passes `training`; `smoke_generate` passes neither (it loads the base as training did);
    `push_merged` passes `merge=True`: it merges into a 16-bit base, so it needs neither CUDA nor
    bitsandbytes (its push checks the token itself).
    """
    if training is not None:
        check_training_requirements(model, training)
    elif not merge:
        # Generation loads the 16-bit base under the adapter, also after an FP8-base run (the model that is merged).
        check_training_requirements(model.model_copy(update={"base_precision": "auto"}), _NO_TRAINING)
    check_gated_access(model)
