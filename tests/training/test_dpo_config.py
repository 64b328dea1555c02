"""DpoTrainingSpec reaches TRL's DPOConfig in a straight line: same-named fields unchanged, the rest declared, and
every DPOConfig field of DPO's own either exposed or declared left out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from twinsft.config import DpoTrainingSpec, ModelSpec
from twinsft.training.dpo_config import DPO_TRANSLATED, NOT_EXPOSED, dpo_config


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_dpo_field_is_passed_through_or_declared():
    from transformers import TrainingArguments
    from trl import DPOConfig

    assert sorted(set(DpoTrainingSpec.model_fields) - set(DPO_TRANSLATED) - fields(DPOConfig)) == []
    dpo_own = fields(DPOConfig) - fields(TrainingArguments)
    assert sorted(dpo_own - set(DpoTrainingSpec.model_fields) - set(NOT_EXPOSED)) == []
    assert set(NOT_EXPOSED) <= dpo_own  # no stale declarations


def test_same_named_fields_arrive_unchanged(tmp_path: Path):
    training = DpoTrainingSpec(learning_rate=2e-6, beta=0.5, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.2],
                               label_smoothing=0.1, per_device_train_batch_size=3, gradient_accumulation_steps=7,
                               num_train_epochs=1, max_steps=11, optim="adamw_torch", seed=17, dataloader_workers=0,
                               precompute_ref_log_probs=True)
    config = dpo_config(ModelSpec(max_seq_length=256), training, "fp32", "trl", tmp_path)
    for name in ("learning_rate", "beta", "loss_type", "loss_weights", "label_smoothing", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "max_steps", "optim", "seed", "precompute_ref_log_probs"):
        assert getattr(config, name) == getattr(training, name), name
    assert config.max_length == 256  # model.max_seq_length when unset
    shorter = training.model_copy(update={"max_length": 64})
    assert dpo_config(ModelSpec(), shorter, "fp32", "trl", tmp_path).max_length == 64
