"""Fine-tune with TRL's SFTTrainer (either backend), measure it, and save the LoRA adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.models import resolve_model
from twinsft.prompts import ALPACA
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
from twinsft.training import resume
from twinsft.training.backends import load_trl, load_unsloth
from twinsft.training.memory_plan import BatchPlan, ModelShape, Workload, plan_batch
from twinsft.training.out_of_memory import explain_out_of_memory
from twinsft.training.report import LossPoint, TrainReport
from twinsft.training.response_loss import check_prompts_masked, check_template, check_token_boundary, rows_for_loss
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
    """The one SFTTrainer set-up that the step and the benchmark share."""
    from transformers import set_seed

    check_training_requirements(model, training)
    response_only = training.loss_on == "response"
    if response_only:
        check_template(ALPACA)
    backend = pick_backend(training.backend)
    precision = pick_precision(training.precision)
    training, plan = plan_memory(model, lora, training, backend)
    set_seed(training.seed)  # LoRA init and data order
    loader = load_unsloth if backend == "unsloth" else load_trl
    peft_model, tokenizer = loader(model, lora, training, precision)
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

    Resumes from the newest complete checkpoint of the same inputs (see twinsft.training.resume).
    `callbacks`: extra Trainer callbacks (e.g. an experiment tracker's); progress lines are built in.
    """
    from transformers import PrinterCallback

    from twinsft.training.callbacks import ProgressCallback

    start = resume.resume_point(train_ds, eval_ds, model, lora, training)
    with explain_out_of_memory(model, training, "model loading"):
        setup = build_trainer(
            train_ds, eval_ds, model, lora, training, output_dir=start.folder,
            callbacks=[ProgressCallback(), resume.mark_complete_callback(start.store), *(callbacks or [])],
        )
    setup.trainer.remove_callback(PrinterCallback)  # ProgressCallback prints a readable line instead of raw dicts
    before, result, after = _evaluate_train_evaluate(setup, model, start)
    _save_adapter(setup, adapter_dir)
    report = _report(setup, model, start, before, after, result, rows=(len(train_ds), len(eval_ds)))
    resume.finish(start, keep=setup.training.keep_checkpoints)
    return report


def _evaluate_train_evaluate(
    setup: TrainerSetup, model: ModelSpec, start: resume.ResumePoint
) -> tuple[float, Any, float]:
    """Held-out loss before training, the training result, held-out loss after (peak memory counted from here)."""
    trainer, training = setup.trainer, setup.training
    if cuda_available():
        import torch

        torch.cuda.reset_peak_memory_stats()
    with explain_out_of_memory(model, training, "evaluation"):
        before = trainer.evaluate()["eval_loss"]
    log.info("eval loss before training: %.4f", before)
    if start.checkpoint is not None:
        log.warning("resuming from %s (step %d)", start.checkpoint, start.step)
    with explain_out_of_memory(model, training, "training"):
        result = trainer.train(resume_from_checkpoint=str(start.checkpoint) if start.checkpoint else None)
    with explain_out_of_memory(model, training, "evaluation"):
        after = trainer.evaluate()["eval_loss"]
    log.info("eval loss after training: %.4f", after)
    return float(before), result, float(after)


def _save_adapter(setup: TrainerSetup, adapter_dir: Path) -> None:
    adapter_dir.mkdir(parents=True, exist_ok=True)
    setup.trainer.model.save_pretrained(str(adapter_dir))
    setup.tokenizer.save_pretrained(str(adapter_dir))


def _loss_points(history: list[dict[str, Any]], key: str) -> list[LossPoint]:
    return [LossPoint(step=int(h["step"]), loss=float(h[key])) for h in history if key in h]


def _report(setup: TrainerSetup, model: ModelSpec, start: resume.ResumePoint, before: float, after: float,
            result: Any, rows: tuple[int, int]) -> TrainReport:
    trainer, training, plan = setup.trainer, setup.training, setup.plan
    runtime = float(result.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    peak, kind = peak_memory_gib()
    trainable, total = trainer.model.get_nb_trainable_parameters()
    history = trainer.state.log_history
    train_losses = _loss_points(history, "loss")
    # After a resume the Trainer's mean covers only the steps it ran; the restored log covers all.
    resumed = start.checkpoint is not None and train_losses
    train_loss = sum(p.loss for p in train_losses) / len(train_losses) if resumed else result.training_loss
    return TrainReport(
        backend=setup.backend,
        mode="qlora" if model.load_in_4bit else "lora",
        precision=setup.precision,
        device=device_name(),
        eval_loss_before=before,
        eval_loss_after=after,
        train_loss=float(train_loss),
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
        resumed_from_step=start.step,
        train_rows=rows[0],
        eval_rows=rows[1],
        train_rows_sha256=start.train_rows_sha256,
        eval_rows_sha256=start.eval_rows_sha256,
        loss_on=training.loss_on,
    )
