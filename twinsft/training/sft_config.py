"""`TrainingSpec` to TRL's `SFTConfig` in a straight line.

A `TrainingSpec` field named like an `SFTConfig` field passes through unchanged. The fields in
`TRANSLATED` are twinsft's own or mean something `SFTConfig` spells differently; each says where
it goes. The other `SFTConfig` arguments below are fixed by the recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsft.config import ModelSpec, TrainingSpec
from twinsft.runtime import Backend, Precision, cuda_available
from twinsft.tracking import hf_report_to

TRANSLATED = {
    "backend": "picks the model loader (training.backends), not an SFTConfig argument",
    "memory_plan": "re-splits the batch before the config is built (training.memory_plan)",
    "precision": "bf16 / fp16",
    "gradient_checkpointing": "TRL's checkpointing for the TRL backend; Unsloth installs its own",
    "dataloader_workers": "dataloader_num_workers, persistent workers and prefetch",
    "checkpoint_dir": "output_dir, one folder per run key (training.resume)",
    "save_steps": "save_strategy and save_steps",
    "keep_checkpoints": "training.resume deletes the run's checkpoints after success unless set",
    "report_to": "every integration but comet_ml, which twinsft.tracking drives",
    "loss_on": "completion_only_loss, and the rows' prompt-completion split (training.response_loss)",
    "warmup_steps": "set once the trainer counts its optimizer steps (training.schedule); unset fits the run",
    "num_processes": "how many torchrun processes train (training.launch); the Trainer reads its rank from torchrun",
}


def dataloader_workers(training: TrainingSpec) -> int:
    if training.dataloader_workers != "auto":
        return training.dataloader_workers
    return 2 if cuda_available() else 0


def trainer_arguments(
    training: TrainingSpec, precision: Precision, backend: Backend, output_dir: Path
) -> dict[str, Any]:
    """The `TRANSLATED` fields as TrainingArguments spells them, and the arguments the recipe fixes: the same for
    the SFT and the DPO trainer (training.dpo_config)."""
    workers = dataloader_workers(training)
    return dict(
        # Translated from twinsft's fields.
        output_dir=str(output_dir),
        warmup_steps=training.warmup_steps or 0,  # training.schedule.fit_warmup sets it for the run's length
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=training.gradient_checkpointing and backend == "trl",
        save_strategy="steps" if training.save_steps else "no",
        save_steps=training.save_steps or 500,
        report_to=hf_report_to(training.report_to),
        # Collating a micro-batch takes milliseconds of Python; in the training process the GPU waits for it at
        # every optimizer step (logging syncs there). Workers have it ready.
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_prefetch_factor=4 if workers else None,
        # Fixed by the recipe.
        gradient_checkpointing_kwargs={"use_reentrant": False},
        eval_strategy="steps" if training.eval_steps else "no",
        save_total_limit=2,  # the newest may be half-written when a crash hits; the one before stays
        data_seed=training.seed,
        include_num_input_tokens_seen="non_padding",  # counted without a GPU sync: training/trainer.py
        logging_nan_inf_filter=False,  # a NaN loss is shown, not replaced; the check cost a GPU sync per micro-batch
        disable_tqdm=True,
    )


def sft_config(
    model: ModelSpec, training: TrainingSpec, precision: Precision, backend: Backend, output_dir: Path
) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        **training.model_dump(exclude=set(TRANSLATED)),
        **trainer_arguments(training, precision, backend, output_dir),
        # response: TRL masks the prompt of prompt-completion rows; all: `text` rows, nothing to mask.
        completion_only_loss=training.loss_on == "response",
        dataset_text_field="text",
        max_length=model.max_seq_length,
        packing_strategy="bfd",  # padding-free: position_ids restart per sample, no cross-sample attention
        # Under DDP: every LoRA weight gets a gradient in every step, so skip DDP's search for unused ones
        # (a graph traversal per step); the frozen base has no gradients for DDP to synchronise.
        ddp_find_unused_parameters=False,
    )
