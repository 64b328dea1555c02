"""Pick micro-batch and gradient checkpointing from the model's shape and the card's memory.

The effective batch (micro-batch x accumulation) is the recipe's and never changes; only how it
is split does. Without checkpointing a step skips the recomputed forward pass (about a third of
the step time), so the plan prefers it whenever the predicted peak fits, then the largest
micro-batch that fits.

Peak allocated memory is predicted as
    weights + LoRA state (param, grad, 8-bit Adam: ~8 bytes per trainable parameter) + 0.25 GiB
    + tokens_per_micro_batch * bytes_per_token
where bytes_per_token, in bf16 (2 bytes per element), is
    no checkpointing:  L * (2*d + 3.5*f) * 2 + V * 2 + 4*d            (every layer's activations, logits)
    checkpointing:     max((2*d + 3.5*f) * 2, V * 2) + 4*d         (Unsloth offloads layer inputs to CPU;
                                                                     the recomputed layer is freed before
                                                                     the logits exist, so the larger counts)
d = hidden size, f = MLP size, L = layers, V = vocabulary. The (2d + 3.5f) per layer and the
weights/LoRA terms reproduce the peaks of a bare Unsloth loop on an H100 for the Llama-3.1-8B
shape within 1 GiB (tests/training/test_memory_plan.py; docs/benchmarks.md has our own measured peaks).

TRL + PEFT is costed apart: eager layers keep more activations (TRL_LAYER_FACTOR), logits stay in
fp32 with their gradient (TRL_LOGIT_BYTES), LoRA weights are fp32 (TRL_LORA_STATE_BYTES), and for
QLoRA `prepare_model_for_kbit_training` upcasts every weight it does not quantise (embeddings, LM
head, norms) to fp32. Fitted to TRL QLoRA at micro-batch 1 without checkpointing on an H100
(27.4 GiB); with checkpointing the prediction stays above the measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 2**30
LORA_STATE_BYTES = 8  # param + grad + two 8-bit Adam moments
NF4_BYTES = 0.5 + 0.016  # 4-bit weights + double-quantised absmax
FIXED_GIB = 0.25  # cuBLAS workspace, kernels' scratch, allocator rounding
HEADROOM = 0.90  # keep 10% of the card free: fragmentation, other processes, eval batches
TRL_LAYER_FACTOR = 2.4  # unfused eager activations versus Unsloth's fused kernels (fitted, see above)
TRL_LORA_STATE_BYTES = 10  # fp32 param + fp32 grad + two 8-bit Adam moments
TRL_LOGIT_BYTES = 10  # bf16 logits + fp32 upcast + fp32 gradient, per vocabulary entry


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied_embeddings: bool

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        heads = config.num_attention_heads
        return cls(
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            layers=config.num_hidden_layers,
            vocab=config.vocab_size,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        )

    @property
    def linear_params(self) -> int:
        d, f, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.layers * (d * q + 2 * d * kv + q * d + 3 * d * f)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def params(self) -> int:
        return self.linear_params + self.embedding_params + self.layers * 2 * self.hidden + self.hidden

    def lora_params(self, r: int, targets: tuple[str, ...] | list[str]) -> int:
        d, f, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        dims = {
            "q_proj": d + q, "k_proj": d + kv, "v_proj": d + kv, "o_proj": q + d,
            "gate_proj": d + f, "up_proj": d + f, "down_proj": f + d,
        }
        return self.layers * r * sum(dims.get(t, 0) for t in targets)


@dataclass(frozen=True)
class Workload:
    """What is trained: the model's shape, the sequence length, how the base is held and the LoRA size."""

    shape: ModelShape
    seq_len: int
    load_in_4bit: bool
    lora_r: int
    targets: tuple[str, ...]
    backend: str = "unsloth"


@dataclass(frozen=True)
class BatchPlan:
    micro_batch: int
    accumulation: int
    gradient_checkpointing: bool
    predicted_peak_gib: float
    budget_gib: float
    reason: str


def predict_peak_gib(work: Workload, *, micro_batch: int, checkpointing: bool) -> float:
    shape, trl = work.shape, work.backend == "trl"
    if work.load_in_4bit:
        unquantised_bytes = 4 if trl else 2  # prepare_model_for_kbit_training upcasts them to fp32
        weights = shape.linear_params * NF4_BYTES + (shape.params - shape.linear_params) * unquantised_bytes
    else:
        weights = shape.params * 2
    lora_state = shape.lora_params(work.lora_r, work.targets) * (TRL_LORA_STATE_BYTES if trl else LORA_STATE_BYTES)
    layer = (2 * shape.hidden + 3.5 * shape.intermediate) * 2
    if trl:
        layer *= TRL_LAYER_FACTOR
        logits = shape.vocab * TRL_LOGIT_BYTES
        per_token = logits + (shape.layers * layer if not checkpointing else layer + shape.layers * shape.hidden * 2)
    else:
        per_token = (max(shape.vocab * 2, layer) if checkpointing else shape.vocab * 2 + shape.layers * layer) \
            + 4 * shape.hidden
    return (weights + lora_state + micro_batch * work.seq_len * per_token) / GIB + FIXED_GIB


def plan_batch(work: Workload, *, effective_batch: int, card_gib: float) -> BatchPlan:
    """The fastest split of `effective_batch` whose predicted peak fits `HEADROOM` of the card."""
    budget = card_gib * HEADROOM
    micro_batches = [m for m in range(effective_batch, 0, -1) if effective_batch % m == 0]
    # No checkpointing first (no recompute), then larger micro-batches (better GPU utilisation).
    for checkpointing in (False, True):
        for mb in micro_batches:
            peak = predict_peak_gib(work, micro_batch=mb, checkpointing=checkpointing)
            if peak <= budget:
                why = "no recompute" if not checkpointing else "checkpointing: no micro-batch fits without it"
                return BatchPlan(mb, effective_batch // mb, checkpointing, round(peak, 2), round(budget, 2),
                                 f"{why}; largest micro-batch under {HEADROOM:.0%} of {card_gib:.0f} GiB")
    return BatchPlan(1, effective_batch, True, round(predict_peak_gib(work, micro_batch=1, checkpointing=True), 2),
                     round(budget, 2), "nothing fits the budget: smallest footprint; expect out-of-memory "
                     "(try QLoRA or shorter max_seq_length)")
