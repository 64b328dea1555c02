"""The SFTTrainer set-up (either backend) that the training body (training.fit) and the benchmarks share.

The memory plan, the model with its LoRA adapters, the SFTConfig and the rows for the chosen loss, in
one trainer. The process must be ready for it: Unsloth imported before transformers and the machine's
requirements checked (runtime.import_unsloth_first, runtime.check_training_requirements), once, where
the process starts: the pipeline step, a torchrun rank, `train_lora`, or the benchmark itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.data.alpaca import ALPACA
from twinsft.models import resolve_model
from twinsft.runtime import Backend, Precision, cuda_available, pick_backend, pick_precision
from twinsft.training.backends import load_trl, load_unsloth
from twinsft.training.memory_plan import BatchPlan, ModelShape, Workload, plan_batch
from twinsft.training.packed_attention import attention_path
from twinsft.training.response_loss import check_prompts_masked, check_template, check_token_boundary, rows_for_loss
from twinsft.training.schedule import fit_warmup
from twinsft.training.sft_config import sft_config
from twinsft.training.trainer import sft_trainer_class

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)


@dataclass
class TrainerSetup:
    trainer: Any
    tokenizer: Any
    training: TrainingSpec  # after the memory plan
    plan: BatchPlan | None
    backend: Backend
    precision: Precision
    attention: str = ""  # the kernel packed rows take (training.packed_attention)


def plan_memory(model: ModelSpec, lora: LoraSpec, training: TrainingSpec,
                backend: Backend) -> tuple[TrainingSpec, BatchPlan | None]:
    """On CUDA with memory_plan auto: re-split the effective batch to fit this card (see memory_plan.py)."""
    if training.memory_plan != "auto" or not cuda_available():
        return training, None
    import torch
    from transformers import AutoConfig

    shape = ModelShape.from_config(AutoConfig.from_pretrained(resolve_model(model), revision=model.revision))
    _, total = torch.cuda.mem_get_info()
    work = Workload(shape, seq_len=model.max_seq_length, load_in_4bit=model.load_in_4bit, lora_r=lora.r,
                    targets=tuple(lora.target_modules), backend=backend)
    plan = plan_batch(work, effective_batch=training.per_device_train_batch_size * training.gradient_accumulation_steps,
                      card_gib=total / 2**30)
    log.info("memory plan: micro-batch %d x accumulation %d, gradient checkpointing %s, predicted peak %.1f of "
             "%.1f GiB (%s)", plan.micro_batch, plan.accumulation, plan.gradient_checkpointing,
             plan.predicted_peak_gib, plan.budget_gib, plan.reason)
    planned = training.model_copy(update={
        "per_device_train_batch_size": plan.micro_batch,
        "gradient_accumulation_steps": plan.accumulation,
        "gradient_checkpointing": plan.gradient_checkpointing,
    })
    return planned, plan


def trainer_scratch(training: TrainingSpec) -> Path:
    """The Trainer's folder when the caller names none (a benchmark): checkpoint_dir, else a temporary folder."""
    if training.checkpoint_dir is not None:
        return Path(training.checkpoint_dir)
    import tempfile

    return Path(tempfile.mkdtemp(prefix="twinsft-trainer-"))


def build_trainer(
    train_ds: Dataset,
    eval_ds: Dataset | None,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    callbacks: list[Any] | None = None,
    output_dir: Path | None = None,
) -> TrainerSetup:
    """The trainer for these rows and settings, ready to evaluate and train; prepare the process first (module doc)."""
    from transformers import set_seed

    response_only = training.loss_on == "response"
    if response_only:
        check_template(ALPACA)
    backend = pick_backend(training.backend)
    precision = pick_precision(training.precision)
    training, plan = plan_memory(model, lora, training, backend)
    set_seed(training.seed)  # LoRA init and data order
    loader = load_unsloth if backend == "unsloth" else load_trl
    peft_model, tokenizer = loader(model, lora, training, precision)
    attention = attention_path(backend, peft_model)
    log.info("attention for packed rows: %s", attention)
    if response_only:
        check_token_boundary(lambda text: tokenizer(text)["input_ids"], ALPACA, how="with the model's tokenizer")
    trainer = sft_trainer_class()(
        model=peft_model,
        args=sft_config(model, training, precision, backend, output_dir or trainer_scratch(training)),
        train_dataset=rows_for_loss(train_ds, training.loss_on, ALPACA),
        eval_dataset=None if eval_ds is None else rows_for_loss(eval_ds, training.loss_on, ALPACA),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    if response_only:
        check_prompts_masked(trainer, backend)
    fit_warmup(trainer, training.warmup_steps, training.learning_rate)
    return TrainerSetup(trainer, tokenizer, training, plan, backend, precision, attention)
