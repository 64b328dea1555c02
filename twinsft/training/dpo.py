"""The DPOTrainer set-up (either backend) the training body (training.fit) builds for a DPO job.

The policy starts from the SFT stage's result: the merged SFT weights with a new LoRA (`job.model` names the
merged folder; B = 0, so the policy starts equal to the reference, which is the same model with the adapter
disabled), or the SFT adapter on its base, trained further (TRL then keeps a frozen copy of it, adapter `ref`,
as the reference). Either way one model is in memory. The memory plan, precision, backends and checkpoints are
the SFT stage's (training.fine_tune, training.backends, training.resume).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import DpoTrainingSpec, LoraSpec, ModelSpec
from twinsft.models import load_model, load_tokenizer, nf4_config
from twinsft.runtime import Precision, device_map, pick_backend, pick_precision, torch_dtype
from twinsft.training.backends import load_trl_base, load_unsloth, lora_config
from twinsft.training.dpo_config import dpo_config
from twinsft.training.fine_tune import TrainerSetup, plan_memory, trainer_scratch
from twinsft.training.schedule import fit_warmup

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)


def load_sft_adapter(model: ModelSpec, adapter_dir: Path, precision: Precision) -> tuple[Any, Any]:
    """The SFT base with the SFT adapter, trainable (TRL adds the frozen `ref` copy)."""
    from peft import PeftModel

    quant = nf4_config(precision) if model.load_in_4bit else None
    base = load_model(model, dtype=torch_dtype(precision), device_map=device_map(), quantization_config=quant)
    return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True), load_tokenizer(model)


def dpo_trainer_class(backend: str) -> type:
    """TRL's DPOTrainer; on the Unsloth backend, patched by Unsloth first (its fused DPO path)."""
    if backend == "unsloth":
        from unsloth import PatchDPOTrainer

        PatchDPOTrainer()
    from trl import DPOTrainer

    return DPOTrainer


def build_dpo_trainer(
    train_ds: Dataset,
    eval_ds: Dataset | None,
    model: ModelSpec,
    lora: LoraSpec,
    training: DpoTrainingSpec,
    callbacks: list[Any] | None = None,
    output_dir: Path | None = None,
    start_adapter: Path | None = None,
) -> TrainerSetup:
    """The DPO trainer for these rendered pairs (prompt, chosen, rejected); `start_adapter`: continue that LoRA."""
    from transformers import set_seed

    backend = pick_backend(training.backend)
    precision = pick_precision(training.precision)
    training, plan = plan_memory(model, lora, training, backend)
    set_seed(training.seed)  # LoRA init and data order
    peft_config = None
    if start_adapter is not None:  # TRL copies the adapter into a frozen `ref` adapter: the reference
        policy, tokenizer = load_sft_adapter(model, start_adapter, precision)
    elif backend == "unsloth":
        policy, tokenizer = load_unsloth(model, lora, training, precision)
    else:  # TRL wraps it in the new LoRA itself, and disables the adapter for the reference
        policy, tokenizer = load_trl_base(model, training, precision), load_tokenizer(model)
        peft_config = lora_config(lora)
    trainer = dpo_trainer_class(backend)(
        model=policy,
        ref_model=None,  # no second model: the reference is the policy with its adapter disabled (or `ref`)
        peft_config=peft_config,
        args=dpo_config(model, training, precision, backend, output_dir or trainer_scratch(training)),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    fit_warmup(trainer, training.warmup_steps, training.learning_rate)  # unset: as for SFT, fitted to the run
    return TrainerSetup(trainer, tokenizer, training, plan, backend, precision, "padded pairs")


def policy_start(model: ModelSpec, start_folder: Path, artifact: str) -> tuple[ModelSpec, Path | None]:
    """What DPO trains from the SFT stage's artifact (a local folder): (the model to load, the adapter to continue).

    merged_model: the merged SFT weights are the model (a new LoRA goes on them), named by its folder and pinned
    by the folder's content digest; `model` lends its loading settings (max_seq_length, load_in_4bit).
    lora_adapter: `model` (the SFT base) with the SFT adapter, trained on.
    """
    if artifact == "lora_adapter":
        return model, Path(start_folder)
    from twinsft.storage import content_digest

    merged = model.model_copy(update={"name": str(Path(start_folder).resolve()), "revision": None, "gguf_file": None,
                                      "package": None, "fingerprint": content_digest(Path(start_folder))})
    return merged, None
