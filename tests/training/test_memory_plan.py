"""The memory plan: predicted peaks against measured ones, and the split it picks per card."""

import pytest
from transformers import LlamaConfig

from bench.random_llama import SHAPES
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.training.fine_tune import plan_memory
from twinsft.training.memory_plan import ModelShape, Workload, plan_batch, predict_peak_gib

LLAMA_8B = ModelShape.from_config(LlamaConfig(**SHAPES["llama-3.1-8b"]))
TARGETS = LoraSpec().target_modules


def llama_8b(load_in_4bit: bool, backend: str = "unsloth") -> Workload:
    """Llama-3.1-8B, 2048 tokens per sequence, LoRA r=32 on all seven projections."""
    return Workload(LLAMA_8B, seq_len=2048, load_in_4bit=load_in_4bit, lora_r=32, targets=tuple(TARGETS),
                    backend=backend)


def test_shape_counts_match_llama_3_1_8b():
    assert LLAMA_8B.params == pytest.approx(8.03e9, rel=0.001)  # Meta's published 8,030,261,248
    assert LLAMA_8B.lora_params(32, TARGETS) == 83_886_080  # PEFT's count for r=32 on all 7 projections


# Peak allocated GiB of a bare Unsloth loop, Llama-3.1-8B shape, 2048 tokens per sequence, H100
# (../shared/gpu/README.md; our own runs are in docs/benchmarks.md).
MEASURED = [  # micro-batch, checkpointing, 4-bit, GiB
    (2, True, False, 16.8), (4, True, False, 17.9), (8, True, False, 19.9),
    (2, False, False, 30.7), (4, False, False, 45.8), (8, True, True, 10.3), (2, True, True, 7.2),
]


@pytest.mark.parametrize("mb,ckpt,four_bit,measured", MEASURED)
def test_prediction_is_close_and_never_far_below_the_measured_peak(mb, ckpt, four_bit, measured):
    predicted = predict_peak_gib(llama_8b(four_bit), micro_batch=mb, checkpointing=ckpt)
    assert measured - 0.3 <= predicted <= measured + 1.0


# TRL + PEFT (+ bitsandbytes NF4), same shape and tokens, measured by bench/train_throughput.py
# (bench/results/): the no-checkpointing point the TRL terms are fitted to, and two checkpointing
# points the prediction must not fall below.
TRL_MEASURED = [  # micro-batch, checkpointing, 4-bit, GiB
    (1, False, True, 27.38), (2, True, True, 11.58), (2, True, False, 18.23),
]


@pytest.mark.parametrize("mb,ckpt,four_bit,measured", TRL_MEASURED)
def test_trl_prediction_is_never_below_the_measured_peak(mb, ckpt, four_bit, measured):
    predicted = predict_peak_gib(llama_8b(four_bit, backend="trl"), micro_batch=mb, checkpointing=ckpt)
    assert measured <= predicted <= measured + (1.0 if not ckpt else 5.0)


def test_trl_qlora_plan_on_an_h100_avoids_the_split_that_ran_out_of_memory():
    # The first TRL terms planned 4 x 4 without checkpointing (58.7 GiB predicted); on an H100 it
    # ran out of memory with 76 GiB allocated.
    plan = plan_batch(llama_8b(True, backend="trl"), effective_batch=16, card_gib=79.18)
    assert (plan.micro_batch, plan.gradient_checkpointing) == (2, False)
    assert plan.predicted_peak_gib == pytest.approx(27.38 + 19.1, abs=1.5)  # one more micro-batch's activations


@pytest.mark.parametrize("card_gib,four_bit,expected", [
    (79.2, False, (4, 4, False)),   # H100 80GB: no recompute, 4 x 4
    (139.8, False, (8, 2, False)),  # H200
    (24.0, False, (8, 2, True)),    # a 24 GiB card: only fits with checkpointing
    (24.0, True, (2, 8, False)),    # QLoRA frees enough for no recompute there
])
def test_plan_keeps_the_effective_batch_and_fits_the_card(card_gib, four_bit, expected):
    plan = plan_batch(llama_8b(four_bit), effective_batch=16, card_gib=card_gib)
    assert (plan.micro_batch, plan.accumulation, plan.gradient_checkpointing) == expected
    assert plan.micro_batch * plan.accumulation == 16
    assert plan.predicted_peak_gib <= 0.9 * card_gib


def test_plan_on_a_card_too_small_says_so():
    plan = plan_batch(llama_8b(False), effective_batch=16, card_gib=8.0)
    assert (plan.micro_batch, plan.gradient_checkpointing) == (1, True)
    assert "expect out-of-memory" in plan.reason


def test_without_cuda_the_configured_values_stand():
    training = TrainingSpec(per_device_train_batch_size=3, gradient_accumulation_steps=5, memory_plan="auto")
    assert plan_memory(ModelSpec(), LoraSpec(), training, "trl") == (training, None)
