"""`DpoTrainingSpec` to TRL's `DPOConfig` in a straight line, as training.sft_config does for SFT.

A field named like a `DPOConfig` field passes through unchanged (DPO's own: beta, loss_type, label_smoothing,
...; and the TrainingArguments ones both share). `sft_config.TRANSLATED` fields are translated the same way for
both trainers; `DPO_TRANSLATED` lists the ones DPO reads differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsft.config import DpoTrainingSpec, ModelSpec
from twinsft.runtime import Backend, Precision
from twinsft.training.sft_config import TRANSLATED, trainer_arguments

DPO_TRANSLATED = {
    **TRANSLATED,
    "packing": "DPO pads pairs (TRL's padding-free DPO is off): always False, not a DPOConfig argument",
    "loss_on": "DPO's loss is on the answers by definition: not a DPOConfig argument",
    "max_length": "max_length, model.max_seq_length when unset",
}

# DPOConfig's own fields that twinsft does not expose, and why (tests/training/test_dpo_config.py holds the list).
NOT_EXPOSED = {
    "model_init_kwargs": "twinsft loads the model itself (twinsft.models, training.backends)",
    "trust_remote_code": "no code from the Hub runs",
    "pad_token": "deprecated by TRL; the tokenizer's pad token is set in twinsft.models.prepare_tokenizer",
    "padding_free": "TRL's padding-free DPO is off since its DPO refactor (it warns and pads)",
}


def dpo_config(
    model: ModelSpec, training: DpoTrainingSpec, precision: Precision, backend: Backend, output_dir: Path
) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        **training.model_dump(exclude=set(DPO_TRANSLATED)),
        **trainer_arguments(training, precision, backend, output_dir),
        max_length=training.max_length or model.max_seq_length,
    )
