"""Fine-tune with TRL's SFTTrainer (either backend), measure it, and save the LoRA adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.memory_plan import BatchPlan, ModelShape, plan_batch
from twinsft.models import resolve_model
from twinsft.runtime import (
    Backend,
    Precision,
    check_training_requirements,
    cuda_available,
    device_name,
    library_versions,
    peak_memory_gib,
    pick_backend,
    pick_precision,
)
from twinsft import resume
from twinsft.training.backends import load_trl, load_unsloth
from twinsft.tracking import hf_report_to
from twinsft.training.oom import explain_out_of_memory
from twinsft.training.report import LossPoint, TrainReport
from twinsft.training.trainer import sft_trainer_class

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)


def sft_config(
    model: ModelSpec, training: TrainingSpec, precision: Precision, backend: Backend, output_dir: Path
) -> Any:
    from trl import SFTConfig

    workers = dataloader_workers(training)
    return SFTConfig(
        output_dir=str(output_dir),
        dataset_text_field="text",
        max_length=model.max_seq_length,
        packing=training.packing,
        packing_strategy="bfd",  # padding-free: position_ids restart per sample, no cross-sample attention
        per_device_train_batch_size=training.per_device_train_batch_size,
        per_device_eval_batch_size=training.per_device_eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        num_train_epochs=training.num_train_epochs,
        max_steps=training.max_steps,
        learning_rate=training.learning_rate,
        lr_scheduler_type=training.lr_scheduler_type,
        warmup_steps=training.warmup_steps,
        weight_decay=training.weight_decay,
        optim=training.optim,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # Unsloth installs its own (offloaded) checkpointing on the model.
        gradient_checkpointing=training.gradient_checkpointing and backend == "trl",
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=training.logging_steps,
        eval_strategy="steps" if training.eval_steps else "no",
        eval_steps=training.eval_steps,
        save_strategy="steps" if training.save_steps else "no",
        save_steps=training.save_steps or 500,
        save_total_limit=2,  # the newest may be half-written when a crash hits; the one before stays
        seed=training.seed,
        data_seed=training.seed,
        report_to=hf_report_to(training.report_to),  # Comet: twinsft.tracking drives it
        include_num_input_tokens_seen="non_padding",  # counted without a GPU sync: training/trainer.py
        logging_nan_inf_filter=False,  # a NaN loss is shown, not replaced; the check cost a GPU sync per micro-batch
        # Collating a packed micro-batch takes milliseconds of Python; in the training process the GPU
        # waits for it at every optimizer step (logging syncs there). Workers have it ready.
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_prefetch_factor=4 if workers else None,
        disable_tqdm=True,
    )


def dataloader_workers(training: TrainingSpec) -> int:
    if training.dataloader_workers != "auto":
        return training.dataloader_workers
    return 2 if cuda_available() else 0


def _loss_points(history: list[dict[str, Any]], key: str) -> list[LossPoint]:
    return [LossPoint(step=int(h["step"]), loss=float(h[key])) for h in history if key in h]


@dataclass
class TrainerSetup:
    trainer: Any
    tokenizer: Any
    training: TrainingSpec  # after the memory plan
    plan: BatchPlan | None
    backend: Backend
    precision: Precision


def plan_memory(model: ModelSpec, lora: LoraSpec, training: TrainingSpec, backend: Backend) -> tuple[TrainingSpec, BatchPlan | None]:
    """On CUDA with memory_plan auto: re-split the effective batch to fit this card (see memory_plan.py)."""
    if training.memory_plan != "auto" or not cuda_available():
        return training, None
    import torch
    from transformers import AutoConfig

    shape = ModelShape.from_config(AutoConfig.from_pretrained(resolve_model(model), revision=model.revision))
    _, total = torch.cuda.mem_get_info()
    plan = plan_batch(
        shape,
        effective_batch=training.per_device_train_batch_size * training.gradient_accumulation_steps,
        seq_len=model.max_seq_length,
        card_gib=total / 2**30,
        load_in_4bit=model.load_in_4bit,
        lora_r=lora.r,
        targets=lora.target_modules,
        backend=backend,
    )
    log.info("memory plan: micro-batch %d x accumulation %d, gradient checkpointing %s, predicted peak %.1f of "
             "%.1f GiB (%s)", plan.micro_batch, plan.accumulation, plan.gradient_checkpointing,
             plan.predicted_peak_gib, plan.budget_gib, plan.reason)
    planned = training.model_copy(update={
        "per_device_train_batch_size": plan.micro_batch,
        "gradient_accumulation_steps": plan.accumulation,
        "gradient_checkpointing": plan.gradient_checkpointing,
    })
    return planned, plan


def build_trainer(
    train_ds: Dataset,
    eval_ds: Dataset | None,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    callbacks: list[Any] | None = None,
    output_dir: Path | None = None,
) -> TrainerSetup:
    """The one SFTTrainer set-up that the step and the benchmark share."""
    from transformers import set_seed

    check_training_requirements(model, training)
    backend = pick_backend(training.backend)
    precision = pick_precision(training.precision)
    training, plan = plan_memory(model, lora, training, backend)
    set_seed(training.seed)  # LoRA init and data order
    loader = load_unsloth if backend == "unsloth" else load_trl
    peft_model, tokenizer = loader(model, lora, training, precision)
    trainer = sft_trainer_class()(
        model=peft_model,
        args=sft_config(model, training, precision, backend, output_dir or Path(training.checkpoint_dir)),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    return TrainerSetup(trainer, tokenizer, training, plan, backend, precision)


def train_lora(
    train_ds: Dataset,
    eval_ds: Dataset,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    adapter_dir: Path,
    callbacks: list[Any] | None = None,
) -> TrainReport:
    """Train LoRA/QLoRA adapters on `text` rows; save adapter + tokenizer to `adapter_dir`.

    Resumes from the newest complete checkpoint of the same inputs (see twinsft.resume).
    `callbacks`: extra Trainer callbacks (e.g. an experiment tracker's); progress lines are built in.
    """
    from transformers import PrinterCallback

    from twinsft.training.callbacks import ProgressCallback

    # Keyed by the configured settings (before the memory plan), so a resume on another card still finds it.
    train_sha, eval_sha = resume.dataset_hash(train_ds), resume.dataset_hash(eval_ds)
    checkpoints = resume.run_dir(training, resume.run_key(train_sha, eval_sha, model, lora, training))
    start = resume.latest_complete(checkpoints)
    start_step = resume.checkpoint_step(start) if start else None
    with explain_out_of_memory(model, training, "model loading"):
        setup = build_trainer(
            train_ds, eval_ds, model, lora, training, output_dir=checkpoints,
            callbacks=[ProgressCallback(), resume.mark_complete_callback(), *(callbacks or [])],
        )
    trainer, tokenizer, training, plan = setup.trainer, setup.tokenizer, setup.training, setup.plan
    trainer.remove_callback(PrinterCallback)  # ProgressCallback prints a readable line instead of raw dicts
    if cuda_available():
        import torch

        torch.cuda.reset_peak_memory_stats()
    with explain_out_of_memory(model, training, "evaluation"):
        before = trainer.evaluate()["eval_loss"]
    log.info("eval loss before training: %.4f", before)
    if start is not None:
        log.warning("resuming from %s (step %d)", start, start_step)
    with explain_out_of_memory(model, training, "training"):
        result = trainer.train(resume_from_checkpoint=str(start) if start else None)
    with explain_out_of_memory(model, training, "evaluation"):
        after = trainer.evaluate()["eval_loss"]
    log.info("eval loss after training: %.4f", after)

    adapter_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))

    runtime = float(result.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    peak, kind = peak_memory_gib()
    trainable, total = trainer.model.get_nb_trainable_parameters()
    history = trainer.state.log_history
    train_losses = _loss_points(history, "loss")
    # After a resume the Trainer's mean covers only the steps it ran; the restored log covers all.
    train_loss = sum(p.loss for p in train_losses) / len(train_losses) if start and train_losses else None
    resume.finish(checkpoints, keep=training.keep_checkpoints)
    return TrainReport(
        backend=setup.backend,
        mode="qlora" if model.load_in_4bit else "lora",
        precision=setup.precision,
        device=device_name(),
        eval_loss_before=float(before),
        eval_loss_after=float(after),
        train_loss=float(train_loss if train_loss is not None else result.training_loss),
        train_losses=train_losses,
        eval_losses=_loss_points(history, "eval_loss"),
        steps=int(trainer.state.global_step),
        train_tokens=tokens,
        train_runtime_s=runtime,
        tokens_per_s=tokens / runtime if runtime > 0 else 0.0,
        peak_memory_gib=round(peak, 3),
        memory_kind=kind,
        trainable_params=int(trainable),
        total_params=int(total),
        micro_batch=training.per_device_train_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        gradient_checkpointing=training.gradient_checkpointing,
        memory_plan=plan.reason if plan else "off (values as configured)",
        versions=library_versions(),
        resumed_from_step=start_step or 0,
        train_rows=len(train_ds),
        eval_rows=len(eval_ds),
        train_rows_sha256=train_sha,
        eval_rows_sha256=eval_sha,
    )
