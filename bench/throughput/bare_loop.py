"""The bare-* cases: Unsloth's model in a loop of its own (no Trainer, no data pipeline), the speed floor the
pipeline's training step is held to."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.throughput.cases import SEQ_LEN, TARGETS
from bench.throughput.results import result_row
from bench.throughput.timing import StepTimer


def run_bare_case(case: dict[str, Any], model_dir: Path, warmup: int, steps: int,
                  profile_dir: Path | None = None) -> dict:
    """A bare Unsloth loop on random tokens: forward, backward, 8-bit AdamW step every micro-batch."""
    import bitsandbytes as bnb
    import torch
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel

    from twinsft.config import LoraSpec
    from twinsft.runtime import unsloth_fp8_mode
    from twinsft.training.backends import peft_lora_kwargs

    t0 = time.perf_counter()
    model, _ = FastLanguageModel.from_pretrained(model_name=str(model_dir), max_seq_length=SEQ_LEN,
                                                 load_in_4bit=case["mode"] == "qlora", dtype=torch.bfloat16,
                                                 load_in_fp8=unsloth_fp8_mode(case.get("base_precision", "auto")))
    model = FastLanguageModel.get_peft_model(
        model, **peft_lora_kwargs(LoraSpec(r=32, alpha=32, target_modules=TARGETS)), random_state=0,
        use_gradient_checkpointing="unsloth" if case["checkpointing"] else False)
    load_s = time.perf_counter() - t0
    model.train()
    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.01)
    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(warmup + steps, profile_dir, case["name"])  # marked like the Trainer: at each step's end
    losses = []
    for i in range(warmup + steps + (1 if profile_dir else 0)):
        ids = torch.randint(300, 32000, (case["micro_batch"], SEQ_LEN), device="cuda", generator=gen)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        losses.append(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        timer.mark((i + 1) * ids.numel())
    return result_row(case, timer.steps(warmup), load_s, trace=timer.trace, extra={
        "backend": "unsloth (bare loop)", "micro_batch": case["micro_batch"], "accumulation": 1,
        "gradient_checkpointing": case["checkpointing"], "plan": "off", "samples_per_row": 1,
        "sample_tokens_p50": SEQ_LEN, "sample_tokens_mean": SEQ_LEN, "row_fill": 1.0, "padding_tokens": 0,
        "attention": "Unsloth's (one sample per row)", "first_loss": round(float(losses[0]), 5),
        "losses": [round(float(x), 4) for x in losses]})
