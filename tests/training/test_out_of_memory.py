"""CUDA out of memory, which only training can hit, becomes a one-line error listing the fixes that apply."""

import pytest
import torch

from twinsft.config import ModelSpec, TrainingSpec
from twinsft.errors import UserError
from twinsft.training.out_of_memory import explain_out_of_memory, out_of_memory_error


def test_oom_in_training_lists_every_fix_for_the_reference_lora_recipe():
    model, training = ModelSpec(), TrainingSpec(gradient_checkpointing=False)
    with pytest.raises(UserError) as err:
        with explain_out_of_memory(model, training, "training"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    text = str(err.value)
    assert "\n" not in text and text.startswith("CUDA out of memory during training; try ")
    assert "QLoRA (model.load_in_4bit: true)" in text
    assert "training.per_device_train_batch_size (now 2)" in text and "gradient_accumulation_steps" in text
    assert "model.max_seq_length (now 2048)" in text
    assert "training.gradient_checkpointing: true" in text
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)


def test_fixes_already_in_use_are_not_suggested():
    text = str(
        out_of_memory_error(
            ModelSpec(load_in_4bit=True), TrainingSpec(per_device_train_batch_size=1, gradient_checkpointing=True),
            "training",
        )
    )
    assert "QLoRA" not in text and "batch_size" not in text and "gradient_checkpointing" not in text
    assert "model.max_seq_length (now 2048)" in text


def test_oom_in_evaluation_names_the_eval_batch():
    text = str(out_of_memory_error(ModelSpec(), TrainingSpec(per_device_eval_batch_size=8), "evaluation"))
    assert "training.per_device_eval_batch_size (now 8)" in text


def test_other_errors_pass_through():
    with pytest.raises(ValueError):
        with explain_out_of_memory(ModelSpec(), TrainingSpec(), "training"):
            raise ValueError("not memory")
