"""The card's ceiling for the table: its measured bf16 matrix rate over the useful FLOPs of a trained token."""

from __future__ import annotations

import time
from pathlib import Path

from bench.throughput.cases import SEQ_LEN, TARGETS
from bench.throughput.timing import sync_gpu


def matmul_tflops(n: int = 8192, reps: int = 50) -> float:
    """The card's bf16 dense matrix rate, measured: the denominator of 'share of the ceiling'."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    sync_gpu()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync_gpu()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def flops_per_token(model_dir: Path, lora_r: int = 32) -> float:
    """Useful training FLOPs per token for LoRA: 4 N (forward 2N + backward to activations 2N; frozen
    weights get no weight gradient) + 6 N_lora + 12 L d seq (attention scores and values, fwd + bwd),
    N = parameters in matrix products (all linear layers and the LM head, not the embedding lookup)."""
    from transformers import AutoConfig

    from twinsft.training.memory_plan import ModelShape

    shape = ModelShape.from_config(AutoConfig.from_pretrained(str(model_dir)))
    n_matmul = shape.linear_params + shape.vocab * shape.hidden
    return 4 * n_matmul + 6 * shape.lora_params(lora_r, TARGETS) + 12 * shape.layers * shape.hidden * SEQ_LEN
