"""Load the base model with LoRA adapters attached: Unsloth's fast path or plain transformers + PEFT."""

from __future__ import annotations

from typing import Any

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.models import load_model, load_tokenizer, nf4_config, prepare_tokenizer, resolve_model
from twinsft.runtime import Precision, check_fp8_base, device_map, torch_dtype, unsloth_fp8_mode
from twinsft.training.packed_attention import trl_attn_implementation


def peft_lora_kwargs(lora: LoraSpec) -> dict[str, Any]:
    """The LoRA section in the keywords both PEFT's `LoraConfig` and Unsloth's `get_peft_model` take."""
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "bias": lora.bias,
        "target_modules": list(lora.target_modules),
    }


def load_trl_base(model: ModelSpec, training: TrainingSpec, precision: Precision) -> Any:
    """The base model for transformers + PEFT (4-bit NF4 and prepared for k-bit training under QLoRA)."""
    from peft import prepare_model_for_kbit_training

    if model.base_precision != "auto":
        check_fp8_base(model.base_precision, "trl")  # raises: the FP8 base is Unsloth's
    quant = nf4_config(precision) if model.load_in_4bit else None
    base = load_model(model, dtype=torch_dtype(precision), device_map=device_map(), quantization_config=quant,
                      attn_implementation=trl_attn_implementation(training.packing))
    if quant is not None:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=training.gradient_checkpointing)
    return base


def lora_config(lora: LoraSpec) -> Any:
    from peft import LoraConfig

    return LoraConfig(**peft_lora_kwargs(lora), task_type="CAUSAL_LM")


def load_trl(model: ModelSpec, lora: LoraSpec, training: TrainingSpec, precision: Precision) -> tuple[Any, Any]:
    """transformers + PEFT (+ bitsandbytes NF4 for QLoRA). Works on CPU and GPU."""
    from peft import get_peft_model

    return get_peft_model(load_trl_base(model, training, precision), lora_config(lora)), load_tokenizer(model)


def load_unsloth(model: ModelSpec, lora: LoraSpec, training: TrainingSpec, precision: Precision) -> tuple[Any, Any]:
    """Unsloth's FastLanguageModel: fused kernels, offloaded gradient checkpointing. CUDA only.

    Under torchrun Unsloth places the whole model on the rank's LOCAL_RANK GPU itself (its automatic
    device map); on one GPU that map also plans its layer offloading, so it is not replaced here.
    With model.base_precision fp8 / fp8_block, Unsloth quantizes the frozen base once to FP8 (torchao, into a
    private cache folder) and multiplies it in FP8; the LoRA weights, their gradients and the optimizer stay
    in the training precision and fp32.
    """
    from unsloth import FastLanguageModel

    base, tokenizer = FastLanguageModel.from_pretrained(
        model_name=resolve_model(model),
        max_seq_length=model.max_seq_length,
        dtype=torch_dtype(precision),
        load_in_4bit=model.load_in_4bit,
        load_in_fp8=unsloth_fp8_mode(model.base_precision),
        revision=model.revision,
    )
    peft_model = FastLanguageModel.get_peft_model(
        base,
        **peft_lora_kwargs(lora),
        use_gradient_checkpointing="unsloth" if training.gradient_checkpointing else False,
        random_state=training.seed,
    )
    return peft_model, prepare_tokenizer(tokenizer)
