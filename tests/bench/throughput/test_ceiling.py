"""The training benchmark's FLOPs per token, against the memory plan's model shape."""

from transformers import LlamaConfig

from bench.throughput.ceiling import flops_per_token
from twinsft.config import LoraSpec
from twinsft.training.memory_plan import ModelShape

TARGETS = LoraSpec().target_modules


def test_benchmark_flops_per_token(tiny_model_dir):
    shape = ModelShape.from_config(LlamaConfig.from_pretrained(tiny_model_dir))
    expected = 4 * (shape.linear_params + shape.vocab * shape.hidden) + 6 * shape.lora_params(32, TARGETS) \
        + 12 * shape.layers * shape.hidden * 2048
    assert flops_per_token(tiny_model_dir) == expected
