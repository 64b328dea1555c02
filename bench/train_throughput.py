"""Training throughput of the `train_sft` code path on a Llama-3.1-8B-shaped model, one card, one table.

    python -m bench.train_throughput --tokenizer DIR [--cases unsloth-lora,trl-lora,...] [--steps 5]

Each case runs in its own process (Unsloth patches transformers on import, so a TRL + PEFT
baseline must never share a process with it) and builds its trainer with
`twinsft.training.fine_tune.build_trainer`, the function the pipeline step calls: same SFTConfig,
padding-free bfd packing of 2048-token sequences, adamw_8bit, bf16. By default every training row
is longer than 2048 tokens, so each packed sequence is one full 2048-token sample, as in a bare
loop. Real instruction data is a few hundred tokens a row, so a packed sequence holds several
samples: -len<median> and -hist draw the rows' token lengths from a distribution instead.

Cases (comma-separated):
  <backend>-<lora|qlora>[-mb<k>][-nockpt][-plan][-hfcount][-len<median>|-hist]
                                   backend unsloth or trl; effective batch 16 sequences; default
                                   micro-batch 2 with checkpointing (the reference); -plan lets
                                   twinsft.training.memory_plan choose; -hfcount puts back transformers' token
                                   count and NaN filter (a GPU sync per micro-batch), to measure them;
                                   -len350: row lengths log-normal, median 350 tokens, sigma 0.8, clipped to
                                   32..2000; -hist: lengths from --histogram FILE (python -m bench.length_histogram
                                   exports one from a run config's mix, as its dataset card counts them)
  bare-<lora|qlora>-mb<k>[-nockpt]  a bare Unsloth loop (no Trainer): the speed floor our step is held to
Before timing a case whose packed sequences hold several samples, the first optimizer step's loss
(its 16 rows, micro-batch by micro-batch, weighted by tokens) is computed on the packed-attention
path the step uses and on the one-call-per-sample path it replaced (training.packed_attention); the
case fails if they differ by more than 1e-3.
A step is timed end to end, from one optimizer step's end to the next (GPU synchronised there):
data loading, logging and callbacks included, as in a real run. tokens/s is the median over
--steps steps after --warmup steps; peak is torch's max allocated. Each invocation is appended
to bench/results/<date>-<card>.json as one run, saved after each case (compare rows only within a
run), and its table printed. --profile DIR records one more step per case with torch.profiler, writes
DIR/<case>.json.gz and prints where the GPU waited (bench/gpu_gaps.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twinsft.config import LLAMA_LINEAR_MODULES

REPO = Path(__file__).resolve().parents[1]
# Every headline case beside its real-length twin (median 350), and other medians so nothing is tuned to one.
DEFAULT_CASES = ("unsloth-lora-plan,unsloth-lora-plan-len350,unsloth-qlora-plan,unsloth-qlora-plan-len350,"
                 "trl-lora-plan,trl-lora-plan-len350,unsloth-lora,unsloth-lora-len350,trl-lora,trl-lora-len350,"
                 "unsloth-qlora,unsloth-qlora-len350,trl-qlora,trl-qlora-len350,bare-lora-mb2,bare-lora-mb8-nockpt,"
                 "unsloth-lora-plan-len100,unsloth-lora-plan-len1000")
SEQ_LEN = 2048
EFFECTIVE_BATCH = 16
TARGETS = LLAMA_LINEAR_MODULES  # the recipe's LoRA targets: all seven linear projections
CASE = re.compile(r"^(?P<kind>unsloth|trl|bare)-(?P<mode>lora|qlora)(-mb(?P<mb>\d+))?"
                  r"(?P<nockpt>-nockpt)?(?P<plan>-plan)?(?P<hfcount>-hfcount)?"
                  r"(-len(?P<median>\d+)|(?P<hist>-hist))?$")
# Log-normal sample lengths: sigma and clip as measured in issue 13 (mean ~1.4 x the median).
LOGNORMAL_SIGMA, MIN_LEN, MAX_LEN = 0.8, 32, 2000
# Packed-attention path against the previous one, over the first optimizer step (16 rows). On the first
# micro-batch alone, bf16 rounding between the two kernels measured 5.8e-4 to 1.5e-3 on a random 8B model
# (loss 12.6), larger the fewer tokens the micro-batch holds; over a step's 16 rows it averages down.
LOSS_TOLERANCE = 1e-3


def fail(message: str) -> None:
    """Bad input: one line, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_case(name: str) -> dict[str, Any]:
    m = CASE.match(name)
    lengths = f"len{m['median']}" if m and m["median"] else "hist" if m and m["hist"] else "one-sample"
    if not m or (m["kind"] == "bare" and (m["plan"] or m["hfcount"] or lengths != "one-sample")) \
            or (m["median"] and not MIN_LEN <= int(m["median"]) <= MAX_LEN):
        fail(f"unknown case '{name}'; see --help for the case grammar")
    return {"name": name, "kind": m["kind"], "mode": m["mode"], "micro_batch": int(m["mb"] or 2),
            "checkpointing": not m["nockpt"], "plan": bool(m["plan"]),
            "hfcount": bool(m["hfcount"]), "lengths": lengths}


def twin_of(case: str) -> str | None:
    """The one-sample-row case a real-length case is compared with (same name without -len/-hist)."""
    base = re.sub(r"-(len\d+|hist)$", "", case)
    return base if base != case else None


# ---------------------------------------------------------------- the child process: one case


def sample_lengths(lengths: str, total_tokens: int, seed: int = 0,
                   histogram: list[tuple[int, int, int]] | None = None) -> list[int]:
    """Token lengths summing to at least `total_tokens`: log-normal by median ('len350') or from a histogram."""
    import math
    import random

    rng = random.Random(seed)
    if lengths == "hist":
        assert histogram, "-hist needs a histogram"
        weights = [rows for _, _, rows in histogram]

        def draw() -> int:
            low, high, _ = rng.choices(histogram, weights)[0]
            return rng.randint(low, high)
    else:
        mu = math.log(int(lengths.removeprefix("len")))

        def draw() -> int:
            return int(min(MAX_LEN, max(MIN_LEN, rng.lognormvariate(mu, LOGNORMAL_SIGMA))))
    out: list[int] = []
    while sum(out) < total_tokens:
        out.append(min(draw(), SEQ_LEN))  # longer rows are truncated to max_length by TRL
    return out


def rows_of_lengths(tokenizer_dir: Path, lengths: list[int], seed: int = 0) -> list[str]:
    """Texts of random vocabulary tokens, each about its length once tokenized (decoding can merge a few)."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(seed)
    low, high = 300, min(len(tok), 32000)
    rows = []
    for n in lengths:
        # Round trip once and cut: the second decode of canonical tokens keeps the count closer to n.
        ids = tok(tok.decode([rng.randrange(low, high) for _ in range(n)]), add_special_tokens=False)["input_ids"]
        rows.append(tok.decode(ids[:n]))
    return rows


def long_rows(tokenizer_dir: Path, n: int, seed: int = 0) -> list[str]:
    """n texts of random vocabulary tokens, each longer than SEQ_LEN once tokenized."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(seed)
    low, high = 300, min(len(tok), 32000)  # ordinary word pieces, no special tokens
    rows = []
    for _ in range(n):
        text = tok.decode([rng.randrange(low, high) for _ in range(int(SEQ_LEN * 1.3))])
        assert len(tok(text)["input_ids"]) > SEQ_LEN
        rows.append(text)
    return rows


class StepTimer:
    """Wall time and tokens from each optimizer step's end to the next, synchronised with the GPU there.

    `profile_dir`: record the step after the last measured one with torch.profiler (not timed).
    """

    def __init__(self, measured_until: int, profile_dir: Path | None = None, name: str = "") -> None:
        self.marks: list[tuple[float, int]] = []
        self.measured_until, self.profile_dir, self.name = measured_until, profile_dir, name
        self.profiler: Any = None
        self.trace: Path | None = None

    def steps(self, warmup: int) -> list[tuple[float, int]]:
        marks = self.marks[max(warmup - 1, 0): self.measured_until]
        return [(t1 - t0, n1 - n0) for (t0, n0), (t1, n1) in itertools.pairwise(marks)]

    def mark(self, tokens: int) -> None:
        _sync()
        if self.profiler is not None:
            self.profiler.stop()
            self.trace = save_trace(self.profiler, self.profile_dir, self.name)
            self.profiler = None
        self.marks.append((time.perf_counter(), tokens))
        if self.profile_dir and len(self.marks) == self.measured_until:
            self.profiler = start_profiler()

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class _Timer(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                timer.mark(int(state.num_input_tokens_seen or 0))

        return _Timer()


def start_profiler() -> Any:
    import torch

    prof = torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA], with_stack=True)
    prof.start()
    return prof


def save_trace(prof: Any, out_dir: Path | None, name: str) -> Path:
    import gzip
    import shutil

    assert out_dir is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{name}.json"
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(f"{raw}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return Path(f"{raw}.gz")


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


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
    model = ModelSpec(name=str(model_dir), max_seq_length=SEQ_LEN, load_in_4bit=case["mode"] == "qlora")
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
    check = first_loss_check(setup, loss_tolerance) if packing["samples_per_row"] > 1 else {}
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    setup.trainer.train()
    used = setup.training
    return _result(case, timer.steps(warmup), load_s, trace=timer.trace, extra={
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


def first_loss_check(setup: Any, tolerance: float = LOSS_TOLERANCE) -> dict[str, float]:
    """The first optimizer step's loss on the packed-attention path and on one attention call per sample.

    The step's rows (micro-batch x accumulation of the first packed rows), in its micro-batches, each
    weighted by its label tokens as the Trainer weights them: bf16 rounding between two kernels
    averages down over a step's ~32k tokens, a real difference does not. Forward only (the gradient
    follows the same kernels); a difference over `tolerance` ends the case.
    """
    import torch

    from twinsft.training.packed_attention import per_segment_attention

    trainer, used = setup.trainer, setup.training
    mb = used.per_device_train_batch_size
    rows = min(mb * used.gradient_accumulation_steps, len(trainer.train_dataset))
    model = trainer.model
    device = next(p.device for p in model.parameters())
    sums = {"packed": 0.0, "per_sample": 0.0}
    tokens, worst = 0, 0.0
    for start in range(0, rows, mb):
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(start, min(start + mb, rows))])
        batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}
        n = int((batch["labels"][..., 1:] != -100).sum())  # the tokens a causal LM's loss averages over
        with torch.no_grad():
            packed = float(model(**batch, use_cache=False).loss)
            with per_segment_attention(setup.backend, model):
                per_sample = float(model(**batch, use_cache=False).loss)
        sums["packed"] += packed * n
        sums["per_sample"] += per_sample * n
        tokens += n
        worst = max(worst, abs(packed - per_sample))
    _sync()
    packed, per_sample = sums["packed"] / tokens, sums["per_sample"] / tokens
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


def run_bare_case(case: dict[str, Any], model_dir: Path, warmup: int, steps: int,
                  profile_dir: Path | None = None) -> dict:
    """A bare Unsloth loop on random tokens: forward, backward, 8-bit AdamW step every micro-batch."""
    import bitsandbytes as bnb
    import torch
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel

    from twinsft.config import LoraSpec
    from twinsft.training.backends import peft_lora_kwargs

    t0 = time.perf_counter()
    model, _ = FastLanguageModel.from_pretrained(model_name=str(model_dir), max_seq_length=SEQ_LEN,
                                                 load_in_4bit=case["mode"] == "qlora", dtype=torch.bfloat16)
    model = FastLanguageModel.get_peft_model(
        model, **peft_lora_kwargs(LoraSpec(r=32, alpha=32, target_modules=TARGETS)), random_state=0,
        use_gradient_checkpointing="unsloth" if case["checkpointing"] else False)
    load_s = time.perf_counter() - t0
    model.train()
    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.01)
    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(warmup + steps, profile_dir, case["name"])  # marked like the Trainer: at each step's end
    for i in range(warmup + steps + (1 if profile_dir else 0)):
        ids = torch.randint(300, 32000, (case["micro_batch"], SEQ_LEN), device="cuda", generator=gen)
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        timer.mark((i + 1) * ids.numel())
    return _result(case, timer.steps(warmup), load_s, trace=timer.trace, extra={
        "backend": "unsloth (bare loop)", "micro_batch": case["micro_batch"], "accumulation": 1,
        "gradient_checkpointing": case["checkpointing"], "plan": "off", "samples_per_row": 1,
        "sample_tokens_p50": SEQ_LEN, "sample_tokens_mean": SEQ_LEN, "row_fill": 1.0, "padding_tokens": 0,
        "attention": "Unsloth's (one sample per row)"})


def _result(case: dict, steps: list[tuple[float, int]], load_s: float, extra: dict, trace: Path | None = None) -> dict:
    import torch

    from twinsft.runtime import device_name, library_versions

    rates = [tokens / seconds for seconds, tokens in steps]
    return {
        "case": case["name"], "mode": case["mode"], "lengths": describe_lengths(case), **extra,
        "tokens_per_s": round(statistics.median(rates), 1), "steps_measured": len(rates),
        "step_s": round(statistics.median(s for s, _ in steps), 3),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "load_s": round(load_s, 1), "seq_len": SEQ_LEN, "card": device_name(), "versions": library_versions(),
        **({"trace": str(trace)} if trace else {}),
    }


def describe_lengths(case: dict) -> str:
    if case.get("lengths", "one-sample") == "one-sample":
        return f"one sample per row (every row over {SEQ_LEN} tokens)"
    if case["lengths"] == "hist":
        return f"histogram {case.get('histogram_file')}"
    return (f"log-normal median {case['lengths'].removeprefix('len')} sigma {LOGNORMAL_SIGMA} "
            f"clipped {MIN_LEN}..{MAX_LEN}")


def matmul_tflops(n: int = 8192, reps: int = 50) -> float:
    """The card's bf16 dense matrix rate, measured: the denominator of 'share of the ceiling'."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    _sync()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync()
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


def read_histogram(path: Path | None) -> list[tuple[int, int, int]]:
    from twinsft.data.dataset_card import read_length_histogram

    if path is None:
        fail("a -hist case needs --histogram FILE (python -m bench.length_histogram writes one)")
    try:
        return read_length_histogram(path)
    except ValueError as e:
        fail(str(e))
        raise


def child(args: argparse.Namespace) -> None:
    if args.child == "matmul":
        result = {"case": "matmul", "tflops": round(matmul_tflops(), 1)}
    else:
        case = parse_case(args.child)
        if case["kind"] == "bare":
            result = run_bare_case(case, args.model_dir, args.warmup, args.steps, args.profile)
        else:
            histogram = None
            if case["lengths"] == "hist":
                case["histogram_file"] = args.histogram.name
                histogram = read_histogram(args.histogram)
            result = run_step_case(case, args.model_dir, args.tokenizer, args.warmup, args.steps, args.profile,
                                   histogram, args.loss_tolerance)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- the parent: cases, table, JSON


def child_result(proc: subprocess.CompletedProcess) -> dict[str, Any] | None:
    """The `RESULT {json}` line a case's child process printed; None (with its output's tail) when it failed."""
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        print(f"   failed (exit {proc.returncode}):\n{tail}", flush=True)
        return None
    return json.loads(line[len("RESULT "):])


def run_child(case: str, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, "-m", "bench.train_throughput", "--child", case, "--model-dir", str(args.model_dir),
           "--tokenizer", str(args.tokenizer), "--warmup", str(args.warmup), "--steps", str(args.steps),
           *(["--profile", str(args.profile)] if args.profile else []),
           *(["--histogram", str(args.histogram)] if args.histogram else []),
           "--loss-tolerance", str(args.loss_tolerance)]
    print(f"== {case}", flush=True)
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.case_timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        print(f"   stopped after {args.case_timeout} s:\n" + "\n".join(out.splitlines()[-10:]), flush=True)
        return None
    result = child_result(proc)
    if result is None:
        return None
    print(f"   {result}", flush=True)
    if result.get("trace"):
        from bench.gpu_gaps import summarize

        print(summarize(Path(result.pop("trace"))), flush=True)
    return result


def results_path(card: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")
    return REPO / "bench" / "results" / f"{dt.date.today().isoformat()}-{slug}.json"


def table(rows: list[dict], tflops: float, fpt: float) -> str:
    ceiling = tflops * 1e12 / fpt if tflops else 0.0
    by_case = {r["case"]: r for r in rows}
    out = [f"card: {rows[0]['card']}; bf16 matmul {tflops:.0f} TFLOP/s measured; {fpt / 1e9:.1f} GFLOP/token "
           f"useful at one 2048-token sample per row -> ceiling {ceiling:,.0f} tokens/s",
           "| case | backend | mode | micro-batch x accum | checkpointing | samples/row | tokens/s | "
           "vs one-sample twin | share of ceiling | vs TRL same mode | peak GiB | attention for packed rows |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = by_case.get(f"trl-{r['mode']}")
        speedup = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        share = f"{r['tokens_per_s'] / ceiling:.0%}" if ceiling else "-"
        twin = by_case.get(twin_of(r["case"]) or "")
        vs_twin = f"{r['tokens_per_s'] / twin['tokens_per_s']:.0%}" if twin else "-"
        out.append(f"| {r['case']} | {r['backend']} | {r['mode']} | {r['micro_batch']} x {r['accumulation']} | "
                   f"{'on' if r['gradient_checkpointing'] else 'off'} | {r.get('samples_per_row', 1)} | "
                   f"{r['tokens_per_s']:,.0f} | {vs_twin} | {share} | {speedup} | {r['peak_gib']} | "
                   f"{r.get('attention', '-')} |")
    return "\n".join(out)


def save_run(run: dict, shape: dict, card: str) -> Path:
    """This invocation's run in bench/results/<date>-<card>.json, next to (or replacing) its earlier save."""
    path = results_path(card)
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    # One entry per invocation: rows are compared only within a run (one machine, one session).
    runs = [r for r in saved["runs"] if r["run"] != run["run"]]
    saved = {"card": card, "model_shape": shape, "effective_batch": EFFECTIVE_BATCH, "seq_len": SEQ_LEN,
             "runs": [*runs, run]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--shape", default="llama-3.1-8b", help="a bench.random_llama shape")
    parser.add_argument("--model-dir", type=Path, help="default outputs/bench/random-<shape>, created if missing")
    parser.add_argument("--tokenizer", type=Path, required=True, help="saved tokenizer (bench.random_llama)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also profile one step per case into DIR")
    parser.add_argument("--histogram", type=Path, metavar="FILE",
                        help="token-length histogram for -hist cases (python -m bench.length_histogram)")
    parser.add_argument("--loss-tolerance", type=float, default=LOSS_TOLERANCE,
                        help="largest first-micro-batch loss difference, packed-attention path against the previous")
    parser.add_argument("--case-timeout", type=float, metavar="S", help="stop a case after S seconds, go on")
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model_dir = args.model_dir or REPO / "outputs" / "bench" / f"random-{args.shape}"
    if args.child:
        return child(args)

    cases = [parse_case(c) for c in args.cases.split(",") if c]
    if any(c["lengths"] == "hist" for c in cases):
        read_histogram(args.histogram)  # a bad file fails here, before any model is built
    # In a process of its own: building it here would leave this process holding GPU memory that
    # every case then lacks (seen: a case ran out of memory beside 31 GiB held by the parent).
    subprocess.run([sys.executable, "-m", "bench.random_llama", "--shape", args.shape, "--tokenizer",
                    str(args.tokenizer), "--out", str(args.model_dir)], cwd=REPO, check=True)
    matmul = run_child("matmul", args)
    run = {"run": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
           "bf16_matmul_tflops": (matmul or {}).get("tflops", 0.0), "rows": []}
    shape = {"name": args.shape, "flops_per_token": flops_per_token(args.model_dir)}
    new: list[dict] = []
    path = None
    for case in cases:
        row = run_child(case["name"], args)
        if row is None:
            continue
        new.append({**row, "model_shape": args.shape})
        # Saved after every case: a run cut short (a time limit on a lent machine) keeps its rows.
        path = save_run(run | {"rows": new}, shape, new[0]["card"])
    if not new:
        raise SystemExit("no case finished")
    print(f"run {run['run']}")
    print(table(new, run["bf16_matmul_tflops"], shape["flops_per_token"]))
    print(f"rows written to {path}")


if __name__ == "__main__":
    main()
