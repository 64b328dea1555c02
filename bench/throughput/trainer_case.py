"""One case through `twinsft.training.fine_tune.build_trainer`, the function the pipeline step calls: its packed
rows described, the packed-attention path's first-step loss checked against the path before, then timed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.throughput import REPO
from bench.throughput.cases import EFFECTIVE_BATCH, SEQ_LEN, TARGETS
from bench.throughput.results import result_row
from bench.throughput.rows import long_rows, rows_of_lengths, sample_lengths
from bench.throughput.timing import StepTimer, sync_gpu

# Packed-attention path against the previous one, over the first optimizer step (16 rows). On the first
# micro-batch alone, bf16 rounding between the two kernels measured 5.8e-4 to 1.5e-3 on a random 8B model
# (loss 12.6), larger the fewer tokens the micro-batch holds; over a step's 16 rows it averages down.
LOSS_TOLERANCE = 1e-3


def run_step_case(case: dict[str, Any], model_dir: Path, tokenizer_dir: Path, warmup: int, steps: int,
                  profile_dir: Path | None = None, histogram: list[tuple[int, int, int]] | None = None,
                  loss_tolerance: float = LOSS_TOLERANCE) -> dict:
    if case["kind"] == "unsloth":
        import unsloth  # noqa: F401  (before trl/transformers)
    import torch
    from datasets import Dataset

    from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
    from twinsft.training.fine_tune import build_trainer

    on_gpu = torch.cuda.is_available()
    mb = case["micro_batch"]
    model = ModelSpec(name=str(model_dir), max_seq_length=SEQ_LEN, load_in_4bit=case["mode"] == "qlora",
                      base_precision=case.get("base_precision", "auto"))
    training = TrainingSpec(
        backend=case["kind"], per_device_train_batch_size=mb, gradient_accumulation_steps=EFFECTIVE_BATCH // mb,
        gradient_checkpointing=case["checkpointing"], memory_plan="auto" if case["plan"] else "off",
        max_steps=warmup + steps + (1 if profile_dir else 0), warmup_steps=1,
        logging_steps=1, report_to=[], optim="adamw_8bit" if on_gpu else "adamw_torch",
        checkpoint_dir=str(REPO / "outputs" / "bench" / f"run-{os.getpid()}"),
    )
    rows_needed = (warmup + steps + 2) * EFFECTIVE_BATCH
    if case["lengths"] == "one-sample":
        texts = long_rows(tokenizer_dir, rows_needed)
    else:  # enough samples for rows_needed packed rows, with room for bfd's slack
        texts = rows_of_lengths(tokenizer_dir, sample_lengths(case["lengths"], int(rows_needed * SEQ_LEN * 1.15),
                                                              histogram=histogram))
    train_ds = Dataset.from_dict({"text": texts})
    timer = StepTimer(warmup + steps, profile_dir, case["name"])
    t0 = time.perf_counter()
    setup = build_trainer(train_ds, None, model, LoraSpec(r=32, alpha=32, target_modules=TARGETS), training,
                          callbacks=[timer.callback()])
    load_s = time.perf_counter() - t0
    if case["hfcount"]:
        put_back_hf_token_count(setup.trainer)
    packing = packed_rows(setup.trainer, setup.training.per_device_train_batch_size)
    # The first step's loss before any update: the base's forward alone (LoRA's B starts at zero), to hold an
    # FP8 base against its 16-bit twin on the same rows.
    check = first_loss_check(setup, loss_tolerance) if packing["samples_per_row"] > 1 else first_step_loss(setup)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    setup.trainer.train()
    used = setup.training
    return result_row(case, timer.steps(warmup), load_s, trace=timer.trace, extra={
        "backend": setup.backend, "micro_batch": used.per_device_train_batch_size,
        "accumulation": used.gradient_accumulation_steps, "gradient_checkpointing": used.gradient_checkpointing,
        "plan": setup.plan.reason if setup.plan else "off",
        "predicted_peak_gib": setup.plan.predicted_peak_gib if setup.plan else None,
        "attention": setup.attention, **packing, **check,
    })


def packed_rows(trainer: Any, micro_batch: int) -> dict[str, Any]:
    """How the packed training rows look: samples per row, tokens per sample, fill, padding in a micro-batch."""
    ds = trainer.train_dataset
    seq = ds["seq_lengths"][:] if "seq_lengths" in ds.column_names else [[len(r)] for r in ds["input_ids"][:]]
    samples = sorted(n for row in seq for n in row)
    batch = trainer.data_collator([ds[i] for i in range(micro_batch)])
    real = sum(sum(row) for row in seq[:micro_batch])
    return {
        "samples_per_row": round(len(samples) / len(seq), 2),
        "sample_tokens_p50": samples[len(samples) // 2],
        "sample_tokens_mean": round(sum(samples) / len(samples), 1),
        "row_fill": round(sum(samples) / (len(seq) * SEQ_LEN), 3),  # real tokens per 2048-token row
        "padding_tokens": int(batch["input_ids"].numel()) - real,  # in the first micro-batch (padding-free: 0)
    }


def step_rows_loss(setup: Any) -> tuple[float, int, list[float]]:
    """The first optimizer step's rows, forward only, micro-batch by micro-batch, each weighted by its label tokens
    as the Trainer weights them: (loss, label tokens, each micro-batch's loss)."""
    import torch

    trainer, used = setup.trainer, setup.training
    mb = used.per_device_train_batch_size
    rows = min(mb * used.gradient_accumulation_steps, len(trainer.train_dataset))
    model = trainer.model
    device = next(p.device for p in model.parameters())
    total, tokens, each = 0.0, 0, []
    for start in range(0, rows, mb):
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(start, min(start + mb, rows))])
        batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        n = int((batch["labels"][..., 1:] != -100).sum())  # the tokens a causal LM's loss averages over
        with torch.no_grad():
            loss = float(model(**batch, use_cache=False).loss)
        total += loss * n
        tokens += n
        each.append(loss)
    sync_gpu()
    return total / tokens, tokens, each


def first_step_loss(setup: Any) -> dict[str, float]:
    loss, tokens, _ = step_rows_loss(setup)
    print(f"first step's loss ({tokens} label tokens): {loss:.5f}", flush=True)
    return {"first_loss": round(loss, 5), "first_loss_tokens": tokens}


def first_loss_check(setup: Any, tolerance: float = LOSS_TOLERANCE) -> dict[str, float]:
    """The first optimizer step's loss on the packed-attention path and on one attention call per sample.

    The step's rows (micro-batch x accumulation of the first packed rows), in its micro-batches, each
    weighted by its label tokens as the Trainer weights them: bf16 rounding between two kernels
    averages down over a step's ~32k tokens, a real difference does not. Forward only (the gradient
    follows the same kernels); a difference over `tolerance` ends the case.
    """
    from twinsft.training.packed_attention import per_segment_attention

    packed, tokens, each_packed = step_rows_loss(setup)
    with per_segment_attention(setup.backend, setup.trainer.model):
        per_sample, _, each_per_sample = step_rows_loss(setup)
    rows = min(len(each_packed) * setup.training.per_device_train_batch_size, len(setup.trainer.train_dataset))
    worst = max(abs(a - b) for a, b in zip(each_packed, each_per_sample, strict=True))
    diff = abs(packed - per_sample)
    print(f"first step's loss ({rows} rows, {tokens} tokens): {packed:.5f} ({setup.attention}) against "
          f"{per_sample:.5f} (the path before: "
          f"{'one SDPA call per sample' if setup.backend == 'unsloth' else 'SDPA, dense document mask'}): "
          f"difference {diff:.2e}; largest in one micro-batch {worst:.2e}", flush=True)
    if not diff <= tolerance:
        raise SystemExit(f"packed attention changes the loss by {diff:.2e} > {tolerance}: not timed")
    return {"first_loss": round(packed, 5), "first_loss_per_sample_path": round(per_sample, 5),
            "first_loss_tokens": tokens, "first_loss_largest_micro_batch_diff": round(worst, 6)}


def put_back_hf_token_count(trainer: Any) -> None:
    """transformers' own per-micro-batch token count (a .item()) and NaN filter (a bool() of the loss)."""
    import types

    from transformers import Trainer

    trainer._track_num_input_tokens = types.MethodType(Trainer._track_num_input_tokens, trainer)
    trainer.args.logging_nan_inf_filter = True
