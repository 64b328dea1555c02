"""TrainingSpec reaches TRL's SFTConfig in a straight line: same-named fields unchanged, the rest declared."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from twinsft.config import ModelSpec, TrainingSpec
from twinsft.training.sft_config import TRANSLATED, sft_config


def sft_config_fields() -> set[str]:
    from trl import SFTConfig

    return {f.name for f in dataclasses.fields(SFTConfig)}


def unaccounted(spec: type[TrainingSpec]) -> list[str]:
    """Fields neither passed through (an SFTConfig field of that name) nor declared twinsft's own."""
    return sorted(set(spec.model_fields) - set(TRANSLATED) - sft_config_fields())


def test_every_training_field_is_passed_through_or_declared():
    assert unaccounted(TrainingSpec) == []
    assert set(TRANSLATED) <= set(TrainingSpec.model_fields)  # no stale declarations


def test_a_new_field_that_is_neither_fails_the_check():
    class WithNewField(TrainingSpec):
        label_smoothing: float = 0.0  # a misspelt SFTConfig name (label_smoothing_factor)

    assert unaccounted(WithNewField) == ["label_smoothing"]


def test_same_named_fields_arrive_unchanged(tmp_path: Path):
    training = TrainingSpec(learning_rate=1.5e-4, lr_scheduler_type="cosine", per_device_train_batch_size=3,
                            per_device_eval_batch_size=5, gradient_accumulation_steps=7, num_train_epochs=2.5,
                            max_steps=11, optim="adamw_torch", weight_decay=0.05, warmup_steps=4, packing=False,
                            logging_steps=3, eval_steps=6, seed=17, dataloader_workers=0, save_steps=9)
    config = sft_config(ModelSpec(max_seq_length=256), training, "fp32", "trl", tmp_path)
    passed = set(TrainingSpec.model_fields) - set(TRANSLATED)
    assert passed  # the straight line carries most of the section
    for name in passed:
        assert getattr(config, name) == getattr(training, name), name
    # The translated ones, each as twinsft means it.
    assert (config.output_dir, config.max_length, config.save_steps, config.eval_strategy) == (
        str(tmp_path), 256, 9, "steps")
    assert (config.bf16, config.fp16, config.dataloader_num_workers, config.data_seed) == (False, False, 0, 17)


def test_loss_on_becomes_completion_only_loss(tmp_path: Path):
    """response: TRL masks the prompt of prompt-completion rows; all: nothing masked, as the reference recipe."""
    configs = {loss_on: sft_config(ModelSpec(), TrainingSpec(loss_on=loss_on), "fp32", "trl", tmp_path)
               for loss_on in ("all", "response")}
    flags = {loss_on: config.completion_only_loss for loss_on, config in configs.items()}
    assert flags == {"all": False, "response": True}
    assert TrainingSpec().loss_on == "all"
