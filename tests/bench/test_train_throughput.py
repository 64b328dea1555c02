"""The training benchmark's case names and its FLOPs per token, against the memory plan's model shape."""

import pytest
from transformers import LlamaConfig

from bench.train_throughput import flops_per_token, parse_case
from twinsft.config import LoraSpec
from twinsft.training.memory_plan import ModelShape

TARGETS = LoraSpec().target_modules


def test_benchmark_flops_and_cases(tiny_model_dir):
    from bench.train_throughput import TARGETS as BENCH_TARGETS

    assert BENCH_TARGETS == TARGETS
    assert parse_case("unsloth-lora-mb4-nockpt") == {"name": "unsloth-lora-mb4-nockpt", "kind": "unsloth",
                                                     "mode": "lora", "micro_batch": 4, "checkpointing": False,
                                                     "plan": False, "hfcount": False}
    assert parse_case("unsloth-lora-plan-hfcount")["hfcount"]
    for wrong in ("bare-lora-plan", "bare-lora-mb2-hfcount", "unsloth-lora-hfcount-plan"):
        with pytest.raises(SystemExit):
            parse_case(wrong)
    shape = ModelShape.from_config(LlamaConfig.from_pretrained(tiny_model_dir))
    expected = 4 * (shape.linear_params + shape.vocab * shape.hidden) + 6 * shape.lora_params(32, TARGETS) \
        + 12 * shape.layers * shape.hidden * 2048
    assert flops_per_token(tiny_model_dir) == expected
