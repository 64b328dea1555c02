"""The training body: the trainer, held-out loss / training / held-out loss, and on the main rank the adapter
and the report.

The step's own process and every torchrun rank run this one function (training.launch starts them,
training.rank is a rank's entry point); only the world differs. Its import closure is the training code
the checkpoint key hashes (resume.run_key), so it imports neither the launcher nor the rank entry point
nor their hand-off: editing how ranks start or what they log must not turn a resume into a fresh start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twinsft.config import ModelSpec
from twinsft.runtime import cuda_available, device_name, library_versions, peak_memory_gib
from twinsft.training.dpo import build_dpo_trainer
from twinsft.training.fine_tune import TrainerSetup, build_trainer
from twinsft.training.job import MetricsSink, TrainingJob
from twinsft.training.out_of_memory import explain_out_of_memory
from twinsft.training.report import LossPoint, TrainReport
from twinsft.training.resume import ResumePoint, mark_complete_callback
from twinsft.training.world import World, largest_over_ranks, split_batch

log = logging.getLogger(__name__)


def fit(job: TrainingJob, world: World, start: ResumePoint, metrics: MetricsSink | None = None) -> TrainReport | None:
    """Train this process's share of `job`, resuming from `start`; the report on the main rank, None elsewhere.

    `metrics`: where the main rank sends every trainer log (and tokens/s), e.g. an experiment tracker's.
    Every rank writes its checkpoint files into `start.folder`; the main rank marks them complete.
    """
    from transformers import PrinterCallback

    from twinsft.training.callbacks import MetricsCallback, ProgressCallback  # transformers too: after Unsloth

    training = split_batch(job.training, world.size)
    callbacks: list[Any] = [mark_complete_callback(start.store)]
    if world.main:  # the other ranks' progress would repeat the main rank's
        callbacks.append(ProgressCallback())
        if metrics is not None:
            callbacks.append(MetricsCallback(metrics))
    with explain_out_of_memory(job.model, training, "model loading"):
        if job.kind == "dpo":
            setup = build_dpo_trainer(job.train_ds, job.eval_ds, job.model, job.lora, training, callbacks=callbacks,
                                      output_dir=start.folder, start_adapter=job.start_adapter)
        else:
            setup = build_trainer(job.train_ds, job.eval_ds, job.model, job.lora, training, callbacks=callbacks,
                                  output_dir=start.folder)
    setup.trainer.remove_callback(PrinterCallback)  # ProgressCallback prints a readable line instead of raw dicts
    before, result, after = evaluate_train_evaluate(setup, job.model, start)
    if world.main:
        save_adapter(setup, job.adapter_dir)
    peak, kind = peak_memory_gib()
    peak = largest_over_ranks(peak)  # a collective: every rank calls it, the main rank after saving
    if not world.main:
        return None
    return train_report(setup, job, world, start, (before, after), result, (peak, kind))


def evaluate_train_evaluate(setup: TrainerSetup, model: ModelSpec, start: ResumePoint) -> tuple[float, Any, float]:
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


def save_adapter(setup: TrainerSetup, adapter_dir: Path) -> None:
    """The LoRA adapter and the tokenizer, as the export and generation steps load them."""
    adapter_dir.mkdir(parents=True, exist_ok=True)
    # Only the trained adapter: a DPO run that continues an adapter also holds TRL's frozen `ref` copy of it.
    setup.trainer.model.save_pretrained(str(adapter_dir), selected_adapters=["default"])
    setup.tokenizer.save_pretrained(str(adapter_dir))


def loss_points(history: list[dict[str, Any]], key: str) -> list[LossPoint]:
    return [LossPoint(step=int(h["step"]), loss=float(h[key])) for h in history if key in h]


def train_report(setup: TrainerSetup, job: TrainingJob, world: World, start: ResumePoint,
                 eval_losses: tuple[float, float], result: Any, peak_memory: tuple[float, str]) -> TrainReport:
    """The run's report from the trainer's state; `peak_memory`: (GiB, kind), the largest of any rank's."""
    trainer, training, plan = setup.trainer, setup.training, setup.plan
    runtime = float(result.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    history = trainer.state.log_history
    train_losses = loss_points(history, "loss")
    # After a resume the Trainer's mean covers only the steps it ran; the restored log covers all.
    resumed = start.checkpoint is not None and train_losses
    train_loss = sum(p.loss for p in train_losses) / len(train_losses) if resumed else result.training_loss
    return TrainReport(
        backend=setup.backend,
        mode="qlora" if job.model.load_in_4bit else "lora" if job.model.base_precision == "auto"
        else f"lora-{job.model.base_precision}",
        precision=setup.precision,
        device=device_name(),
        eval_loss_before=eval_losses[0],
        eval_loss_after=eval_losses[1],
        train_loss=float(train_loss),
        train_losses=train_losses,
        eval_losses=loss_points(history, "eval_loss"),
        steps=int(trainer.state.global_step),
        train_tokens=tokens,
        train_runtime_s=runtime,
        tokens_per_s=tokens / runtime if runtime > 0 else 0.0,
        peak_memory_gib=round(peak_memory[0], 3),
        memory_kind=peak_memory[1],
        trainable_params=int(trainable),
        total_params=int(total),
        micro_batch=training.per_device_train_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        gradient_checkpointing=training.gradient_checkpointing,
        warmup_steps=int(trainer.args.warmup_steps),
        memory_plan=plan.reason if plan else "off (values as configured)",
        versions=library_versions(),
        resumed_from_step=start.step,
        train_rows=job.rows[0],
        eval_rows=job.rows[1],
        train_rows_sha256=start.train_rows_sha256,
        eval_rows_sha256=start.eval_rows_sha256,
        loss_on=training.loss_on,
        num_processes=world.size,
    )
